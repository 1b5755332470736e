from __future__ import annotations

import math
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bss_sampler import HeuristicCurriculumSampler
from bss_sampler.pacing import (
    PACING_FUNCTIONS,
    baby_step_pacing,
    linear_pacing,
    paced_count,
    root_pacing,
)


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


# -- issue 17 item 7: Eq. 8's floor(N * lambda(t)) in exact arithmetic -----------------------------
def _exact_size(pacing, epoch, n, lambda0, t_grow):
    """Oracle in decimal arithmetic (50 digits): the decimals as written, Eq. 7 and Eq. 8."""
    with localcontext() as context:
        context.prec = 50
        l0, t, grow = Decimal(lambda0), Decimal(epoch), Decimal(t_grow)
        if t >= grow:
            fraction = Decimal(1)
        elif pacing == "root":
            fraction = ((1 - l0 * l0) / grow * t + l0 * l0).sqrt()
        else:
            fraction = l0 + (1 - l0) * t / grow
        return max(1, min(n, math.floor(n * fraction)))


@settings(max_examples=300, deadline=None)
@given(
    n=st.sampled_from([10, 50, 100, 1000]),
    hundredths=st.integers(1, 99),
    pacing=st.sampled_from(["root", "linear"]),
    epoch=st.integers(0, 45),
    t_grow=st.sampled_from(["40", "7", "12.5", "3"]),
)
def test_paced_count_is_exact(n, hundredths, pacing, epoch, t_grow):
    lambda0 = f"0.{hundredths:02d}"
    want = _exact_size(pacing, epoch, n, lambda0, t_grow)
    got = paced_count(pacing, epoch, n, lambda0=float(lambda0), t_grow=float(t_grow))
    assert got == want


@pytest.mark.parametrize("pacing", ["root", "linear"])
def test_every_lambda0_at_epoch_0_gives_floor_n_lambda0(pacing):
    """The 112 mismatches of the issue: e.g. N=100, lambda0=0.29 has 29 samples, not 28."""
    for n in (10, 50, 100, 1000):
        for hundredths in range(1, 100):
            sampler = HeuristicCurriculumSampler(range(n), lambda0=hundredths / 100, pacing=pacing)
            assert sampler.epoch_length(0) == max(1, n * hundredths // 100), (n, hundredths)
