from __future__ import annotations

import math

import pytest

from bss_sampler import PACING_FUNCTIONS, baby_step_pacing, linear_pacing, root_pacing


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0, 0.1),
        (1, math.sqrt(0.99 / 40 + 0.01)),
        (10, math.sqrt(0.99 / 4 + 0.01)),
        (20, math.sqrt(0.99 / 2 + 0.01)),
        (40, 1.0),
        (100, 1.0),
    ],
)
def test_root_eq7(epoch, expected):
    assert root_pacing(epoch, lambda0=0.1, t_grow=40) == pytest.approx(expected)


@pytest.mark.parametrize(("epoch", "expected"), [(0, 0.1), (10, 0.325), (40, 1.0), (50, 1.0)])
def test_linear(epoch, expected):
    assert linear_pacing(epoch, lambda0=0.1, t_grow=40) == pytest.approx(expected)


def test_baby_step_is_a_staircase_reaching_one_at_t_grow():
    values = [baby_step_pacing(t, lambda0=0.1, t_grow=40) for t in range(45)]
    assert values[0] == pytest.approx(0.1)
    assert values[4] == pytest.approx(0.1)  # 9 steps: the first rise after 40 / 9 epochs
    assert values[5] == pytest.approx(0.2)
    assert values[39] < 1.0 and values[40] == 1.0
    steps = {round(b - a, 9) for a, b in zip(values, values[1:])}
    assert steps <= {0.0, 0.1}


@pytest.mark.parametrize("name", sorted(PACING_FUNCTIONS))
def test_every_pacing_is_monotone_in_range(name):
    f = PACING_FUNCTIONS[name]
    values = [f(t, lambda0=0.25, t_grow=12) for t in range(20)]
    assert values[0] == pytest.approx(0.25)
    assert all(0 < v <= 1 for v in values)
    assert values == sorted(values)
    assert values[12] == 1.0
