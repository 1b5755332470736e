"""Balance-aware Sequence Sampling (BSS, Guan, Jiang and Yang, IJCAI 2025) as PyTorch samplers.

* `BalanceScorer`: each sample's balance score (Eq. 4-6), accumulated on the device.
* `HeuristicCurriculumSampler`: balanced samples first, a growing subset (Eq. 7-8).
* `LearnedBalanceSampler`: EMA scores and softmax-weighted epoch orders (Eq. 9-11).
* `BalanceReport`: what each scoring pass saw: per-modality accuracy, confidence and imbalance.

Importing the package has no side effects.
"""

from .functional import (
    CRITERIA,
    balance_loss,
    balance_score,
    min_max_normalize,
    prediction_similarity,
)
from .ordering import epoch_generator, shard, shuffled_prefix, weighted_permutation
from .pacing import PACING_FUNCTIONS, baby_step_pacing, linear_pacing, root_pacing
from .presets import PRESETS, Preset
from .report import BalanceReport
from .samplers import HeuristicCurriculumSampler, LearnedBalanceSampler
from .scorer import BalanceScorer, CoverageError
from .scoring import default_forward, score_dataset

__version__ = "0.1.0"

__all__ = [
    "CRITERIA",
    "PACING_FUNCTIONS",
    "PRESETS",
    "BalanceReport",
    "BalanceScorer",
    "CoverageError",
    "HeuristicCurriculumSampler",
    "LearnedBalanceSampler",
    "Preset",
    "__version__",
    "baby_step_pacing",
    "balance_loss",
    "balance_score",
    "default_forward",
    "epoch_generator",
    "linear_pacing",
    "min_max_normalize",
    "prediction_similarity",
    "root_pacing",
    "score_dataset",
    "shard",
    "shuffled_prefix",
    "weighted_permutation",
]
