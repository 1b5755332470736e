"""Argument checks shared by the scorer and the samplers: one ``if`` each, the value echoed.

Each helper returns the value converted to a plain Python type, or raises ``ValueError`` with a
message that names the argument, states what is valid and echoes the value with ``repr`` (and its
type where the type is the mistake). They accept what PyTorch accepts for the same kind of
argument: numpy and one-element tensor scalars (``np.float32(0.2)``, ``np.int64(3)``,
``torch.tensor(2)``), and refuse what would pass only by accident: ``bool`` as a number, strings,
``None``, floats as integers, NaN.

>>> check_real("alpha", 0.2, 0, 1)
0.2
>>> check_int("epoch", 2, minimum=0)
2
>>> check_real("alpha", True, 0, 1)
Traceback (most recent call last):
    ...
ValueError: alpha must be a real number in [0, 1], got True (bool)
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["NO_SCORES", "check_bool", "check_choice", "check_int", "check_real"]

NO_SCORES = (
    "has no balance scores yet: call sampler.update_scores(model, loader) (or "
    "sampler.set_scores(scores)) before iterating"
)
"""The one wording of "no balance scores yet" (after the owner's name), for every object that
can lack them."""


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(-inf" if low is None else f"{'(' if low_open else '['}{low:g}"
    right = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
    return f"{left}, {right}"


def _got(value: Any) -> str:
    """``repr(value)``, plus its type when the repr alone would not show the mistake."""
    if isinstance(value, (bool, str, np.bool_, torch.Tensor)) or value is None:
        return repr(value) if value is None else f"{value!r} ({type(value).__name__})"
    return repr(value)


def _is_bool(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dtype == torch.bool
    return isinstance(value, (bool, np.bool_))


def check_real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    expected: str | None = None,
) -> float:
    """A finite real number in the interval from ``low`` to ``high`` (``None``: unbounded).

    Accepts Python and numpy reals and one-element real tensors; refuses ``bool``, strings,
    ``None``, complex numbers, NaN and infinities. ``low_open`` / ``high_open`` exclude the bound.
    A value of the wrong type gets "must be a real number in ...", one out of range "must lie
    in ..."; ``expected`` replaces both with its own words ("be a positive number of epochs").

    >>> import numpy as np
    >>> check_real("temperature", np.float32(0.5), 0, None, low_open=True)
    0.5
    >>> check_real("temperature", 0, 0, None, low_open=True)
    Traceback (most recent call last):
        ...
    ValueError: temperature must lie in (0, inf), got 0
    """
    number: float | None = None
    if not _is_bool(value):
        if isinstance(value, torch.Tensor):
            if value.numel() == 1 and not value.is_complex():
                number = float(value.item())
        elif isinstance(value, numbers.Real):
            number = float(value)
    interval = _interval(low, high, low_open, high_open)
    if number is None:
        wanted = expected or f"be a real number in {interval}"
        raise ValueError(f"{name} must {wanted}, got {_got(value)}")
    if (
        math.isfinite(number)
        and (low is None or (number > low if low_open else number >= low))
        and (high is None or (number < high if high_open else number <= high))
    ):
        return number
    raise ValueError(f"{name} must {expected or f'lie in {interval}'}, got {_got(value)}")


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (``None``: unbounded), as ``operator.index`` reads it.

    Accepts Python and numpy integers and one-element integer tensors (what ``range`` and
    ``DistributedSampler.set_epoch`` accept); refuses ``bool``, floats (even ``2.0``), strings and
    ``None``. Wording: "must be an int >= minimum" (or "<= maximum", or "an int"); with both
    bounds, "must lie in [minimum, maximum]" for an int out of range and "must be an int in
    [minimum, maximum]" for anything else.

    >>> import numpy as np
    >>> check_int("seed", np.int64(3), minimum=0)
    3
    >>> check_int("epoch", 1.0, minimum=0)
    Traceback (most recent call last):
        ...
    ValueError: epoch must be an int >= 0, got 1.0
    """
    number: int | None = None
    if not _is_bool(value):
        try:
            number = operator.index(value)
        except TypeError:
            number = None
    if (
        number is not None
        and (minimum is None or number >= minimum)
        and (maximum is None or number <= maximum)
    ):
        return number
    if minimum is not None and maximum is not None:
        interval = f"[{minimum}, {maximum}]"
        wanted = f"lie in {interval}" if number is not None else f"be an int in {interval}"
    elif minimum is not None:
        wanted = f"be an int >= {minimum}"
    elif maximum is not None:
        wanted = f"be an int <= {maximum}"
    else:
        wanted = "be an int"
    raise ValueError(f"{name} must {wanted}, got {_got(value)}")


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (a Python, numpy or one-element tensor bool); nothing else.

    Refuses truthy stand-ins such as ``"no"``, ``1`` or ``None``, which would otherwise be read as
    a bool silently.

    >>> check_bool("drop_last", "no")
    Traceback (most recent call last):
        ...
    ValueError: drop_last must be True or False, got 'no' (str)
    """
    if _is_bool(value) and (not isinstance(value, torch.Tensor) or value.numel() == 1):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {_got(value)}")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of the strings ``choices``.

    >>> check_choice("order", "random", ["balanced_first", "imbalanced_first"])
    Traceback (most recent call last):
        ...
    ValueError: order must be one of ['balanced_first', 'imbalanced_first'], got 'random'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
