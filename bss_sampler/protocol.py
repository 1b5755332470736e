"""What integrations ask a sampler: the capabilities of a scored sampler, as a protocol.

Integrations (Lightning, Accelerate, Transformers) check `ScoredSampler` with ``isinstance``
(it is runtime-checkable) and read `ScoredSampler.varies_epoch_length`, never a closed list of
classes: a new data-level method built on `bss_sampler.core.PolicySampler` that scores with
``update_scores`` works with them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from .report import BalanceReport
from .scoring import Forward

__all__ = ["ScoredSampler"]


@runtime_checkable
class ScoredSampler(Protocol):
    """A sampler whose epochs are ordered by a valuation computed with a model.

    Attributes:
        varies_epoch_length: epochs differ in length, so a loader that fixes its length when
            built must be rebuilt every epoch (Lightning: ``reload_dataloaders_every_n_epochs=1``).
    """

    num_samples: int
    num_replicas: int
    rank: int
    global_order: bool
    epoch: int
    varies_epoch_length: bool

    @property
    def scores(self) -> Tensor | None: ...

    @property
    def scores_epoch(self) -> int | None: ...

    @property
    def last_report(self) -> BalanceReport | None: ...

    @property
    def remaining(self) -> int: ...

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def epoch_length(self, epoch: int | None = None) -> int: ...

    def needs_update(self, epoch: int) -> bool: ...

    def update_scores(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        forward: Forward | None = None,
        progress: bool = True,
    ) -> Tensor: ...

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...
