"""Presets: the paper's defaults and the authors' released code, side by side.

Each field is one place where the released code (github: njustkmg/IJCAI25-BSS) differs from the
paper; ``preset="official"`` reproduces the code, ``preset="paper"`` (the default) the paper.
An argument given explicitly to a sampler always wins over its preset.

The first four fields are the **ordering half** (the samplers' arguments); ``train_mode`` is the
**scoring half**: the default of ``sampler.update_scores(..., train_mode=...)``, never a
sampler setting.

=================  =====================================  ==========================================
field              paper (default)                        official (released code)
=================  =====================================  ==========================================
pacing_offset      0: ``lambda(t)`` with ``t`` from 0     1: ``lambda(t + 1)`` (Eq. 7)
                   (Eq. 7)
update_every       5: re-score every ``E = 5`` epochs     1: re-score every epoch (Eq. 9's ``E``)
beta               0.6: EMA of the scores (Eq. 9)         1.0: no EMA, ``s_upd = s_cur`` (Eq. 9)
probabilities      ``"softmax"``: ``p = softmax(s/T)``    ``"linear"``: ``p ~ 1 + s + 0.01``
                   (Eq. 10)                               (replaces Eq. 10)
train_mode         False: score in eval mode              True: score in train mode (BatchNorm
                                                          statistics move, dropout on)
=================  =====================================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """Defaults that differ between the paper and the released code (see the module table)."""

    name: str
    pacing_offset: int
    update_every: int
    beta: float
    probabilities: str
    train_mode: bool


PRESETS: dict[str, Preset] = {
    "paper": Preset("paper", 0, 5, 0.6, "softmax", False),
    "official": Preset("official", 1, 1, 1.0, "linear", True),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; raises ``ValueError`` naming the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]
