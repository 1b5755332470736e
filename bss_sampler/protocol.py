"""What the integrations ask of a sampler, as runtime-checkable protocols.

The integrations (Lightning, Accelerate, Transformers, `bss_sampler.integrations.find_sampler`)
check these with ``isinstance``, never a closed list of classes, and use exactly what they list:

* `OrderedSampler`: the order state every integration reads and moves (epochs, lengths, the
  shard, checkpoints): what every `bss_sampler.core.PolicySampler` has;
* `ScoredSampler`: an `OrderedSampler` valued by ``update_scores(model, loader, **settings)``
  (the two BSS samplers);
* `ValuedSampler`: an `OrderedSampler` valued by ``update_values(model, loader, forward=...,
  **settings)`` (`bss_sampler.SMVSampler`).

Read where a sampler has them, and never required: ``scores`` and ``scores_epoch`` (the
Lightning callback logs their summary) and ``last_report`` (it logs each pass's report: an
``as_dict(names)`` method, or a dataclass of numbers and per-modality tuples).

So a new data-level method built on `bss_sampler.core.PolicySampler` by the recipe in
`bss_sampler.core`, whose way to compute a valuation is an ``update_scores`` (or
``update_values``) method ending in ``set_values``, works with every integration unchanged
(the Hugging Face ``Trainer``, which fixes the steps per epoch, takes only samplers whose epochs
all hold one number of samples); the integrations pass that method's keyword settings through
(``alpha=...`` for BSS, ``forward=...`` for SMV, whatever a new method's pass takes) after
checking them against its signature. ``tests/integrations/test_custom_sampler.py`` builds one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from .scoring import Forward
from .smv import ValuationForward

__all__ = ["OrderedSampler", "ScoredSampler", "ValuedSampler"]


@runtime_checkable
class OrderedSampler(Protocol):
    """A sampler whose epochs are ordered by a valuation (what every integration uses).

    Attributes:
        num_samples: ``N``, the dataset's length (the Trainer checks its dataset against it).
        num_replicas: ranks it shards over (1 with ``global_order``).
        rank: this process's rank among them.
        global_order: it yields the whole order on every rank (for Accelerate's ``prepare``).
        epoch: the current epoch (after a restore: the checkpoint's).
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
    def remaining(self) -> int:
        """Indices the next ``iter()`` yields (a resumed epoch: what is left)."""

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def epoch_length(self, epoch: int | None = None) -> int: ...

    def needs_update(self, epoch: int) -> bool: ...

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@runtime_checkable
class ScoredSampler(OrderedSampler, Protocol):
    """An `OrderedSampler` valued by one scoring pass, ``update_scores`` (the BSS samplers).

    ``update_scores`` takes the model and the scoring loader, then keyword settings only
    (BSS: ``alpha``, ``criteria``, ``forward``, ``train_mode``, ``progress``).
    """

    def update_scores(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        forward: Forward | None = None,
        progress: bool = True,
    ) -> Tensor:
        """Score every sample with ``model`` over ``loader`` and use the scores (further keyword
        settings are the method's own)."""


@runtime_checkable
class ValuedSampler(OrderedSampler, Protocol):
    """An `OrderedSampler` valued by one valuation pass, ``update_values`` (SMV).

    ``update_values`` takes the model and the loader, then keyword settings only (SMV:
    ``forward``, required, and ``progress``).
    """

    def update_values(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        forward: ValuationForward,
        progress: bool = True,
    ) -> Tensor:
        """Value every sample with ``model`` over ``loader`` and use the values (further keyword
        settings are the method's own)."""
