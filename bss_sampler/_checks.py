"""Argument checks shared by the scorer and the samplers.

Each check accepts what PyTorch accepts for the same kind of argument (Python, NumPy and
zero-dimensional tensor numbers), rejects ``bool`` where a number is expected and anything but a
``bool`` where a flag is expected, and raises ``ValueError`` with a message that names the
argument, echoes the value and states what was expected.

>>> check_real("beta", 0.5, 0.0, 1.0)
0.5
>>> check_real("lambda0", True, 0.0, 1.0, low_open=True)
Traceback (most recent call last):
...
ValueError: lambda0 must lie in (0, 1], got True
>>> check_int("epoch", -1, 0)
Traceback (most recent call last):
...
ValueError: epoch must be an int >= 0, got -1
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["check_bool", "check_choice", "check_int", "check_real"]


def _is_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, torch.Tensor) and value.dtype == torch.bool


def _scalar(value: Any) -> Any:
    """A zero-dimensional tensor's Python number; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_complex():
        return value.item()
    return value


def check_real(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    expected: str | None = None,
) -> float:
    """``value`` as a finite ``float`` inside ``[low, high]`` (an open end excludes its bound).

    ``expected`` replaces the default wording of the error (``"lie in [low, high]"``).
    """
    number = _scalar(value)
    ok = not _is_bool(value) and isinstance(number, numbers.Real) and math.isfinite(number)
    if ok:
        number = float(number)
        ok = (low < number if low_open else low <= number) and (
            number < high if high_open else number <= high
        )
    if not ok:
        if expected is None:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            expected = f"lie in {left}{low:g}, {high:g}{right}"
        raise ValueError(f"{name} must {expected}, got {value!r}")
    return float(number)


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an ``int`` (NumPy and tensor integers too, never ``bool``), ``>= minimum``."""
    try:
        number = None if _is_bool(value) else operator.index(_scalar(value))
    except TypeError:
        number = None
    if number is None or (minimum is not None and number < minimum):
        wanted = "an int" if minimum is None else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return number


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool``: only ``True``/``False`` (NumPy and tensor booleans too)."""
    if not _is_bool(value) or (isinstance(value, torch.Tensor) and value.dim() != 0):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value
