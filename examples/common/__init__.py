"""What every example shares: one training loop, one set of metrics, flags, plots and data.

>>> from examples.common import TrainConfig
>>> TrainConfig(sampler="heuristic").lambda0
0.1
"""

from examples.common.cli import add_common_args
from examples.common.evaluation import combine_logits, evaluate
from examples.common.iprm import IPRMClassifier  # registers method 'iprm'
from examples.common.methods import METHODS, StepOutput, joint_loss, register_method
from examples.common.metrics import (
    accuracy,
    classification_metrics,
    macro_f1,
    mean_average_precision,
)
from examples.common.models import LateFusionClassifier, mlp_encoder
from examples.common.runtime import seed_everything
from examples.common.training import TrainConfig, config_from_args, fit

__all__ = [
    "METHODS",
    "IPRMClassifier",
    "LateFusionClassifier",
    "StepOutput",
    "TrainConfig",
    "accuracy",
    "add_common_args",
    "classification_metrics",
    "combine_logits",
    "config_from_args",
    "evaluate",
    "fit",
    "joint_loss",
    "macro_f1",
    "mean_average_precision",
    "mlp_encoder",
    "register_method",
    "seed_everything",
]
