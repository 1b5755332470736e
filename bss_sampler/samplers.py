"""The two public BSS samplers, importable from here as in 0.1.0.

They live in `bss_sampler.heuristic` (Eq. 7-8) and `bss_sampler.learned` (Eq. 9-11), each a
policy over the order-only core of `bss_sampler.core`.
"""

from __future__ import annotations

from .heuristic import HeuristicCurriculumSampler
from .learned import LearnedBalanceSampler

__all__ = ["HeuristicCurriculumSampler", "LearnedBalanceSampler"]
