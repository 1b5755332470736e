"""`SampleAccumulator`: per-sample sums declared once, synced across ranks with one all-reduce.

The base of `bss_sampler.BalanceScorer`, and of any other pass that adds one value (or a few) per
sample over a dataset. A subclass declares its state in ``__init__``, as torchmetrics' ``Metric``
does with ``add_state``:

* ``add_state("loss")``: one row of ``num_samples`` sums; ``add_state("correct", rows=3)``:
  three; ``add_state("bad_index", per_sample=False)``: a single scalar count.
* Every state is a *sum*: over the updates, and over the ranks by the one all-reduce of `sync`.
  Means (sums over ``visits``) are taken after the sync, so every rank reads the same values.

All states live in one flat tensor: the per-sample rows, in declaration order, form one
``(R, num_samples)`` table (one ``index_add_`` per batch with `index_add`), the scalars follow.
`reset`, `sync`, `state_dict` and `load_state_dict` loop over the declarations; nothing else
lists the state. Every accumulator has the ``visits`` row (valid updates per sample) and the
``bad_index`` scalar (indices outside ``[0, N - 1]``, counted where checking them at once would
stall the device).

>>> import torch
>>> acc = SampleAccumulator(3)
>>> acc.add_state("value")
>>> acc.index_add(torch.tensor([0, 2, 2]), visits=torch.ones(3), value=torch.tensor([1.0, 2, 4]))
>>> acc.sync()["value"]  # one row of N sums
tensor([[1., 0., 6.]])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor

from . import _dist
from ._checks import check_int

__all__ = ["CoverageError", "IndexRangeError", "SampleAccumulator", "Totals"]

SHOW = 5
"""How many offending sample indices an error message lists."""


class CoverageError(ValueError, RuntimeError):
    """Samples were never scored, or a scoring pass visited some of them more than once."""


class IndexRangeError(ValueError):
    """Indices passed to ``update()`` lay outside ``[0, num_samples - 1]``."""


class Totals(dict[str, Tensor]):
    """What `SampleAccumulator.sync` returns: each state's summed values by name, plus `block`."""

    def __init__(self, flat: Tensor, views: Mapping[str, Tensor], order: list[str]) -> None:
        super().__init__(views)
        self._flat, self._order = flat, order

    def block(self, first: str, last: str) -> Tensor:
        """The per-sample states declared from ``first`` to ``last`` as one ``(rows, N)`` view."""
        start, stop = self._order.index(first), self._order.index(last) + 1
        rows = [self[name] for name in self._order[start:stop]]
        offset = self[first].storage_offset() - self._flat.storage_offset()
        count, n = sum(len(row) for row in rows), rows[0].shape[1]
        return self._flat[offset : offset + count * n].view(count, n)


class _Spec(NamedTuple):
    rows: int  # rows of num_samples values; 0 rows: none yet (e.g. sized by a later update)
    per_sample: bool  # False: one scalar
    default: float  # the value of a state that was never added to (or absent from a state dict)


def first_indices(mask: Tensor) -> list[int]:
    """The first `SHOW` positions where the ``(N,)`` ``mask`` is true (or nonzero)."""
    first: list[int] = mask.nonzero().flatten()[:SHOW].tolist()
    return first


def index_error(num_samples: int, bad_index: int) -> IndexRangeError:
    """The one wording of "indices out of range", for the eager and the deferred check."""
    n = num_samples
    return IndexRangeError(
        f"indices must lie in [0, {n - 1}] (num_samples={n}), but {bad_index} indices passed "
        "to update() lay outside"
    )


class SampleAccumulator:
    """Per-sample sums declared with `add_state`, added to with `index_add`, synced by `sync`.

    Args:
        num_samples: size ``N`` of the dataset; indices lie in ``[0, N - 1]``.
        device: where the state lives; ``None``: where the first update's values are.

    Subclasses declare their states in ``__init__`` and override `flush` if they defer work
    (it runs before every read of the state). The state's dtype is set by the first
    `allocate`: float32, or float64 for float64 values and under a process group.
    """

    def __init__(self, num_samples: int, *, device: torch.device | str | None = None) -> None:
        self.num_samples = check_int("num_samples", num_samples, minimum=1)
        self._device = None if device is None else torch.device(device)
        self._specs: dict[str, _Spec] = {}
        self._flat: Tensor | None = None
        self._views: dict[str, Tensor] = {}
        self.add_state("visits")
        self.add_state("bad_index", per_sample=False)

    # -- declaration and storage ----------------------------------------------------------------

    def add_state(
        self, name: str, rows: int = 1, *, per_sample: bool = True, default: float = 0.0
    ) -> None:
        """Declare the state ``name``: ``rows`` rows of ``num_samples`` sums (``per_sample=False``:
        one scalar). Declaring a name again changes its number of rows (kept values stay, new
        rows start at ``default``)."""
        spec = _Spec(rows if per_sample else 1, per_sample, default)
        if self._specs.get(name) == spec:
            return
        self._specs[name] = spec
        if self._flat is not None:
            old = {key: view.clone() for key, view in self._views.items()}
            self._layout(self._flat.device, self._flat.dtype)
            for key, view in old.items():
                if key in self._views and self._views[key].shape == view.shape:
                    self._views[key].copy_(view)

    @property
    def device(self) -> torch.device | None:
        """Device of the state; ``None`` until known."""
        return self._flat.device if self._flat is not None else self._device

    @property
    def allocated(self) -> bool:
        """Whether anything was accumulated (or loaded) since the last `reset`."""
        return self._flat is not None

    def allocate(
        self, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> None:
        """Create the state (every value at its default) unless it exists; ``device`` falls back
        on the constructor's, then the CPU. The state is float32, or float64 for float64 values
        (``dtype``) and under a process group, where every rank must all-reduce the same dtype
        whatever its first values were (a rank may have none); never float64 on MPS."""
        if self._flat is None:
            where = self._device or device or torch.device("cpu")
            wide = (dtype == torch.float64 or _dist.is_distributed()) and where.type != "mps"
            self._layout(where, torch.float64 if wide else torch.float32)

    def _layout(self, device: torch.device, dtype: torch.dtype) -> None:
        table = sum(s.rows for s in self._specs.values() if s.per_sample)
        scalars = [name for name, s in self._specs.items() if not s.per_sample]
        # normal tensors even under inference_mode, so that updates outside it still work
        with torch.inference_mode(False):
            flat = torch.empty(table * self.num_samples + len(scalars), dtype=dtype, device=device)
        self._flat, self._views = flat, self._split(flat)
        for name, spec in self._specs.items():
            self._views[name].fill_(spec.default)

    def _split(self, flat: Tensor) -> dict[str, Tensor]:
        """Views of ``flat``, one per declared state: ``(rows, N)`` per sample, ``()`` scalars."""
        views: dict[str, Tensor] = {}
        n, start = self.num_samples, 0
        for name, spec in self._specs.items():
            if spec.per_sample:
                views[name] = flat[start : start + spec.rows * n].view(spec.rows, n)
                start += spec.rows * n
        for name, spec in self._specs.items():
            if not spec.per_sample:
                views[name] = flat[start]
                start += 1
        return views

    def state(self, name: str) -> Tensor:
        """The live state ``name`` (allocated on first use): ``(rows, N)`` or a scalar."""
        self.allocate()
        return self._views[name]

    def index_add(self, indices: Tensor, **values: Tensor) -> None:
        """Add ``values[name]`` (``(B,)``, or ``(rows, B)``) at the samples ``indices`` (int64, on
        the state's device), for per-sample states declared one after the other: one
        ``index_add_`` for all of them."""
        order = [name for name, spec in self._specs.items() if spec.per_sample]
        names = sorted(values, key=order.index)
        first = order.index(names[0])
        if order[first : first + len(names)] != names:
            raise ValueError(f"index_add needs per-sample states declared in a row, got {names}")
        self.allocate(indices.device)
        assert self._flat is not None
        start = sum(self._specs[name].rows for name in order[:first])
        count = sum(self._specs[name].rows for name in names)
        n = self.num_samples
        block = self._flat[start * n : (start + count) * n].view(count, n)
        rows = torch.cat([values[name].view(-1, len(indices)) for name in names])
        block.index_add_(1, indices, rows.to(block.dtype))

    @staticmethod
    def check_eagerly(device: torch.device) -> bool:
        """Whether to check an update's values at once: only where that costs no device sync and
        leaves no rank waiting in the all-reduce, i.e. on the CPU without a process group.
        Elsewhere mistakes are counted in the state and raised after the all-reduce, on every
        rank alike."""
        return device.type == "cpu" and not _dist.is_distributed()

    def reset(self) -> None:
        """Forget every accumulated value (the declarations stay)."""
        self._flat, self._views = None, {}

    def flush(self) -> None:
        """Finish deferred work before the state is read; the base defers nothing."""

    # -- sync -----------------------------------------------------------------------------------

    def sync(self) -> Totals:
        """Every state summed over all updates and all ranks: the one all-reduce of a pass.

        Without a process group these are views of the live state (read them, do not write);
        under one, of a synced copy (the local sums stay local, so updates may continue). Every
        rank must call this together.
        """
        self.flush()
        self.allocate()
        assert self._flat is not None
        # a copy only under a process group, where the local sums must stay local
        flat = _dist.all_reduce_sum_(self._flat.clone() if _dist.is_distributed() else self._flat)
        order = [name for name, spec in self._specs.items() if spec.per_sample]
        return Totals(flat, self._split(flat) if flat is not self._flat else self._views, order)

    # -- state dict -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """One CPU tensor per per-sample state (``(N,)`` for one row, ``(rows, N)`` else; states
        with no rows left out) and one int per scalar; nothing before any update."""
        self.flush()
        if self._flat is None:
            return {}
        state: dict[str, Any] = {}
        for name, spec in self._specs.items():
            view = self._views[name]
            if not spec.per_sample:
                state[name] = int(view.item())
            elif spec.rows:
                state[name] = (view[0] if spec.rows == 1 else view).cpu().clone()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict`: every declared state it holds, the rest at its default.

        A state without any per-sample state restores "nothing accumulated". Raises
        ``ValueError`` naming the field for a tensor of the wrong shape.
        """
        n = self.num_samples
        rows: dict[str, Tensor] = {}
        for name, spec in self._specs.items():
            if spec.per_sample and name in state:
                want = (n,) if spec.rows == 1 else (spec.rows, n)
                value = state[name]
                if not isinstance(value, Tensor) or tuple(value.shape) != want:
                    raise ValueError(
                        f"state_dict[{name!r}] must be a tensor of shape {want}, "
                        f"got {getattr(value, 'shape', value)!r}"
                    )
                rows[name] = value
        self._flat, self._views = None, {}
        if not rows:
            return
        self.allocate(dtype=next(iter(rows.values())).dtype)
        for name, value in rows.items():
            self._views[name].copy_(value.view_as(self._views[name]))
        for name, spec in self._specs.items():
            if not spec.per_sample and name in state:
                self._views[name].fill_(float(state[name]))

    # -- the checks every accumulator shares ----------------------------------------------------

    def check_coverage(self, totals: Mapping[str, Tensor], least_visits: int) -> None:
        """Raise `CoverageError` if some sample had no valid update (``least_visits == 0``)."""
        if least_visits:
            return
        n, missing = self.num_samples, totals["visits"][0] == 0
        if missing.all():
            raise CoverageError(
                f"all {n} samples were never updated: compute() was called before any "
                "update() (did the loader yield no batch?)"
            )
        raise CoverageError(
            f"{int(missing.sum())} of {n} samples were never updated (first indices: "
            f"{first_indices(missing)}); every sample needs at least one update() before "
            "compute(): does the loader cover the whole dataset?"
        )
