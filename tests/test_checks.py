from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from bss_sampler._checks import check_bool, check_choice, check_int, check_real


def _typed(value: object) -> str:
    """How a message shows a numpy scalar: its repr and type differ between numpy 1 and 2."""
    return re.escape(f"{value!r} ({type(value).__name__})")


@pytest.mark.parametrize(
    "value", [0.2, np.float32(0.2), np.float64(0.2), torch.tensor(0.2), torch.tensor([0.2]), 1]
)
def test_real_accepts_python_numpy_and_tensor_scalars(value):
    got = check_real("alpha", value, 0, 1)
    assert type(got) is float and got == pytest.approx(0.2 if value != 1 else 1.0)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, r"True \(bool\)"),
        (np.bool_(False), _typed(np.bool_(False))),  # numpy 2: np.False_ (bool)
        (torch.tensor(True), r"tensor\(True\) \(Tensor\)"),
        (None, "None"),
        ("0.5", r"'0.5' \(str\)"),
        (1 + 0j, r"\(1\+0j\)"),
        (torch.tensor([0.1, 0.2]), r"tensor\(\[0.1000, 0.2000\]\) \(Tensor\)"),
    ],
)
def test_real_refuses_and_echoes(value, shown):
    with pytest.raises(
        ValueError, match=rf"^alpha must be a real number in \[0, 1\], got {shown}$"
    ):
        check_real("alpha", value, 0, 1)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (1.5, "1.5"), (-0.1, "-0.1"), (2, "2")],
)
def test_real_out_of_range(value, shown):
    with pytest.raises(ValueError, match=rf"^alpha must lie in \[0, 1\], got {shown}$"):
        check_real("alpha", value, 0, 1)


def test_real_open_and_unbounded_intervals():
    assert check_real("t", 3.0, 0, None, low_open=True) == 3.0
    assert check_real("x", -5.0) == -5.0
    with pytest.raises(ValueError, match=r"^t must lie in \(0, inf\), got 0$"):
        check_real("t", 0, 0, None, low_open=True)
    with pytest.raises(ValueError, match=r"^l must lie in \(0, 1\], got 0.0$"):
        check_real("l", 0.0, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"^b must lie in \[0, 1\), got 1$"):
        check_real("b", 1, 0, 1, high_open=True)
    with pytest.raises(ValueError, match=r"^x must lie in \(-inf, inf\), got inf$"):
        check_real("x", float("inf"))
    with pytest.raises(ValueError, match=r"^x must be a real number in \(-inf, inf\), got None$"):
        check_real("x", None)


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), torch.tensor(3)])
def test_int_accepts_what_operator_index_accepts(value):
    got = check_int("seed", value, minimum=0)
    assert type(got) is int and got == 3


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, r"True \(bool\)"),
        (np.bool_(True), _typed(np.bool_(True))),
        (torch.tensor(True), r"tensor\(True\) \(Tensor\)"),
        (2.0, "2.0"),
        (np.float64(2.0), re.escape(repr(np.float64(2.0)))),  # numpy 1: 2.0
        ("2", r"'2' \(str\)"),
        (None, "None"),
        (-1, "-1"),
    ],
)
def test_int_refuses_and_echoes(value, shown):
    with pytest.raises(ValueError, match=rf"^epoch must be an int >= 0, got {shown}$"):
        check_int("epoch", value, minimum=0)


def test_int_bounds_wording():
    assert check_int("k", 5) == 5
    assert check_int("rank", np.int64(1), 0, 1) == 1
    with pytest.raises(ValueError, match=r"^rank must lie in \[0, 1\], got 5$"):
        check_int("rank", 5, 0, 1)
    with pytest.raises(ValueError, match=r"^rank must be an int in \[0, 1\], got 0.0$"):
        check_int("rank", 0.0, 0, 1)
    with pytest.raises(ValueError, match=r"k must be an int <= 1, got 5"):
        check_int("k", 5, maximum=1)
    with pytest.raises(ValueError, match=r"k must be an int, got 0.5"):
        check_int("k", 0.5)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), torch.tensor(False)])
def test_bool_accepts_bools(value):
    assert check_bool("drop_last", value) is bool(value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("no", r"'no' \(str\)"), (1, "1"), (0, "0"), (None, "None"), (1.0, "1.0")],
)
def test_bool_refuses_stand_ins(value, shown):
    with pytest.raises(ValueError, match=rf"^drop_last must be True or False, got {shown}$"):
        check_bool("drop_last", value)


def test_choice():
    assert check_choice("order", "a", ("a", "b")) == "a"
    for value in ("c", None, ["a"]):
        with pytest.raises(ValueError, match=r"order must be one of \['a', 'b'\], got "):
            check_choice("order", value, ("a", "b"))
