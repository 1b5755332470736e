"""The released SMV computation (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation), written
plainly from reading ``code/sample_level.py``, ``code/modality_level.py``,
``code/datasets/dataloader.py`` and ``code/models/models.py``: an oracle for ``test_smv.py``.

Its conventions: two modalities, audio first; a ``drop`` code per training item, 0 for none,
1 for "audio zeroed" (only visual kept), 2 for "visual zeroed" (only audio kept).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn


def concat_fusion_outputs(fc: nn.Linear, a: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The fused output, then with audio zeroed, then with visual zeroed (``exec_drop``)."""
    out = fc(torch.cat((a, v), 1))
    out_v = fc(torch.cat((torch.zeros_like(a), v), 1))
    out_a = fc(torch.cat((a, torch.zeros_like(v)), 1))
    return out, out_v, out_a


def contributions(
    out: Tensor, out_v: Tensor, out_a: Tensor, labels: Tensor
) -> dict[int, tuple[float, float]]:
    """``execute_modulation``: per sample, (contrib_a, contrib_v) from softmax argmaxes."""
    result = {}
    probs = [torch.softmax(x, dim=1).numpy() for x in (out, out_v, out_a)]
    for i, label in enumerate(labels.tolist()):
        right_all, right_v, right_a = (int(np.argmax(p[i])) == label for p in probs)
        value_all = 2.0 if right_all else 0.0
        value_v = 1.0 if right_v else 0.0
        value_a = 1.0 if right_a else 0.0
        result[i] = ((value_a + value_all - value_v) / 2.0, (value_v + value_all - value_a) / 2.0)
    return result


UPPER_BOUNDS = {"released": 1.0, "march2024": 0.9}
"""The upper bound of the one-copy interval: 0.9 as first released (March 2024), 1 since the
change to ``dataloader.py`` of November 2024 (commit d08ff20)."""


def _copies(contribution: float, upper: float) -> int:
    """The open intervals of ``AV_KS_Dataset_sample_level``: one copy in (0.4, upper), two in
    (-0.1, 0.4), three below -0.1, none elsewhere (the bounds themselves included)."""
    if 0.4 < contribution < upper:
        return 1
    if -0.1 < contribution < 0.4:
        return 2
    if contribution < -0.1:
        return 3
    return 0


def sample_level_items(
    contribution: dict[int, tuple[float, float]], rule: str = "released"
) -> list[tuple[int, int]]:
    """``AV_KS_Dataset_sample_level``: the (index, drop) items of the resampled training set."""
    upper = UPPER_BOUNDS[rule]
    length = len(contribution)
    items = [(i, 0) for i in range(length)]
    for i in range(length):
        contrib_a, contrib_v = contribution[i]
        items += [(i, 2)] * _copies(contrib_a, upper)  # audio low: copies with visual zeroed
        items += [(i, 1)] * _copies(contrib_v, upper)
    return items


def modality_level_items(
    contribution_a: float,
    contribution_v: float,
    alpha: float,
    func: str,
    length: int,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """``AV_KS_Dataset_modality_level``: originals plus uniformly drawn copies of one drop."""
    gap_a, gap_v = 1.0 - contribution_a, 1.0 - contribution_v
    base = abs(gap_a - gap_v) / 3 * 2
    if func == "linear":
        difference = base * alpha
    elif func == "tanh":
        difference = math.tanh(base * alpha)
    else:  # "square": the power 1.5
        difference = base**1.5 * alpha
    chosen = rng.choice(length, int(difference * length))
    drop = 2 if gap_a > gap_v else 1
    return [(i, 0) for i in range(length)] + [(int(i), drop) for i in chosen]
