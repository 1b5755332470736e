"""Griffe extension for the API reference: show a constant default by its value.

``criteria: Sequence[str] = CRITERIA`` tells a reader nothing unless they look up ``CRITERIA``;
this extension renders it as ``criteria: Sequence[str] = ('similarity', 'loss')``. It replaces a
parameter default only when it is a bare name that resolves to an upper-case module-level
constant of this package with a known value; every other default is left as written.
"""

from __future__ import annotations

from typing import Any

import griffe


class ConstantDefaults(griffe.Extension):
    """Replace ``NAME`` defaults by the value of the constant ``NAME`` they refer to."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._visit(pkg, loader)

    def _visit(self, obj: griffe.Object, loader: griffe.GriffeLoader) -> None:
        for member in obj.members.values():
            if member.is_alias:
                continue
            if isinstance(member, griffe.Function):
                for parameter in member.parameters:
                    value = self._constant_value(parameter.default, loader)
                    if value is not None:
                        parameter.default = value
            elif isinstance(member, (griffe.Module, griffe.Class)):
                self._visit(member, loader)

    @staticmethod
    def _constant_value(default: Any, loader: griffe.GriffeLoader) -> str | griffe.Expr | None:
        if not isinstance(default, griffe.ExprName) or not default.name.isupper():
            return None
        try:
            target = loader.modules_collection[default.canonical_path]
        except KeyError:
            return None
        if isinstance(target, griffe.Alias):
            target = target.final_target
        if not isinstance(target, griffe.Attribute) or not isinstance(target.parent, griffe.Module):
            return None
        return target.value
