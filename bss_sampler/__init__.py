"""Balance-aware Sequence Sampling (BSS, Guan, Jiang and Yang, IJCAI 2025) as PyTorch samplers.

* `BalanceScorer`, `score_dataset`: each sample's balance score (Eq. 4-6).
* `HeuristicCurriculumSampler`: balanced samples first, a growing subset (Eq. 7-8).
* `LearnedBalanceSampler`: EMA scores and softmax-weighted epoch orders (Eq. 9-11).
* `SMVSampler`: SMV (Wei et al., CVPR 2024), the paper's data-level baseline, on the same core
  (its maths and valuation pass in `bss_sampler.smv`).
* `BalanceReport`: what each scoring pass saw: per-modality accuracy, confidence and imbalance.
* `ScoredSampler`: what integrations ask of a sampler valued by ``update_scores`` (a
  runtime-checkable protocol; `bss_sampler.protocol.ValuedSampler` for ``update_values``, as
  `SMVSampler`).

The rest stays importable from its module: the pure maths (`bss_sampler.functional`,
`bss_sampler.ordering`, `bss_sampler.pacing`), the sampler core for new ordering methods
(`bss_sampler.core`). Importing the package has no side effects.
"""

from .heuristic import HeuristicCurriculumSampler
from .learned import LearnedBalanceSampler
from .presets import PRESETS, Preset
from .protocol import ScoredSampler
from .report import BalanceReport
from .scorer import BalanceScorer, CoverageError
from .scoring import default_forward, score_dataset
from .smv_sampler import SMVSampler

__version__ = "0.2.0"

__all__ = [
    "PRESETS",
    "BalanceReport",
    "BalanceScorer",
    "CoverageError",
    "HeuristicCurriculumSampler",
    "LearnedBalanceSampler",
    "Preset",
    "SMVSampler",
    "ScoredSampler",
    "__version__",
    "default_forward",
    "score_dataset",
]
