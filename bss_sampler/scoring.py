"""The scoring pass: run a model over a loader once and score every sample (Eq. 4-6).

Batch and model conventions of `default_forward`:

* a batch is a tuple ``(x_1, ..., x_M, y)``: the model is called as ``model(x_1, ..., x_M)``;
* or a mapping: ``batch["target"]`` (or ``"label"``) holds the labels, optional
  ``batch["index"]`` the dataset indices, and every other entry is passed to the model as a
  keyword argument: ``model(audio=..., video=...)``;
* the model returns ``(multimodal_logits, [unimodal_logits_1, ..., unimodal_logits_M])`` or a
  mapping with the keys ``"multimodal"`` and ``"unimodal"``.

Anything else is handled by passing ``forward(model, batch) -> (multimodal_logits,
unimodal_logits, targets, indices)``; ``indices=None`` means *positional*: the loader is a
``DataLoader`` that visits the dataset in order (a ``SequentialSampler``, or an unshuffled
``DistributedSampler`` under ``torchrun``), and the pass recovers each batch's indices from that
order. Any other loader (a shuffled one, or a plain iterable of batches, whose order cannot be
known) must give the indices: an ``"index"`` entry of a mapping batch, or ``forward``'s fourth
value. Where the loader's order is known, indices a batch does carry are checked against it: a
dataset wrapped in ``Subset`` (``random_split``) or ``ConcatDataset`` renumbers its samples, and
an ``"index"`` entry that numbers the wrapped dataset would put scores on other samples; the pass
refuses it, naming the entry and the wrapper.

The pass itself, `run_pass`, is not tied to balance scores: any per-sample accumulator (see
`bss_sampler.accumulator.SampleAccumulator`) reuses its loop over the loader, eval or inference
mode and the restore of every module's mode, progress bar, index resolution and the hints on
index errors; `check_once` is its exactly-once check after the accumulator's one all-reduce.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Iterable, Mapping, Sized
from itertools import chain
from typing import (  # noqa: UP035 (runtime aliases on 3.9)
    Any,
    Callable,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    overload,
)

import torch
from torch import Tensor, nn
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    DistributedSampler,
    SequentialSampler,
    Subset,
)

from . import _dist
from ._checks import check_bool
from .accumulator import CoverageError, IndexRangeError
from .functional import CRITERIA
from .report import BalanceReport
from .scorer import BalanceScorer, UnimodalLogits

if sys.version_info >= (3, 10):  # pragma: no cover
    from typing import Literal
else:  # pragma: no cover
    from typing_extensions import Literal

__all__ = [
    "CoverageError",
    "Forward",
    "ForwardOutput",
    "check_once",
    "default_forward",
    "model_device",
    "positional_order",
    "run_pass",
    "score_dataset",
    "to_device",
]

ForwardOutput = Tuple[Tensor, UnimodalLogits, Tensor, Optional[Tensor]]  # noqa: UP006
"""``(multimodal_logits, unimodal_logits, targets, indices or None)``."""

Forward = Callable[[nn.Module, Any], ForwardOutput]
"""``forward(model, batch) -> ForwardOutput``."""

PassForward = Callable[[nn.Module, Any], Sequence[Any]]
"""``forward(model, batch) -> (output, ..., indices or None)`` for `run_pass`: the first value
is a ``(B, ...)`` tensor (it gives the batch size), the last the ``(B,)`` dataset indices."""

_R = TypeVar("_R")

_TARGET_KEYS = ("target", "label")
_RESERVED_KEYS = (*_TARGET_KEYS, "index")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for a model without any."""
    for tensor in chain(model.parameters(), model.buffers()):  # lazily: the first one
        return tensor.device
    return torch.device("cpu")


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor in it (in mappings, lists and tuples) moved to ``device``."""
    if isinstance(batch, Tensor):
        return batch if batch.device == device else batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def describe(value: Any) -> str:
    """What a function returned, for an error message."""
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} values"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with the keys {list(value)}"
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _split_output(output: Any) -> tuple[Tensor, UnimodalLogits]:
    if isinstance(output, Mapping) and "multimodal" in output and "unimodal" in output:
        return output["multimodal"], output["unimodal"]
    if isinstance(output, (tuple, list)) and len(output) == 2:
        return output[0], output[1]
    raise TypeError(
        "the model must return (multimodal_logits, [unimodal_logits, ...]) or a mapping with the "
        f"keys 'multimodal' and 'unimodal', but its output was {describe(output)}; pass "
        "forward= otherwise"
    )


def default_forward(model: nn.Module, batch: Any) -> ForwardOutput:
    """Run ``model`` on ``batch`` following the module's conventions (see the module docstring).

    Inputs and targets move to the model's device; an ``"index"`` entry stays where it is.
    """
    device = model_device(model)
    if isinstance(batch, Mapping):
        key = next((k for k in _TARGET_KEYS if k in batch), None)
        if key is None:
            raise KeyError(
                f"a mapping batch needs one of the keys {_TARGET_KEYS}, got {list(batch)}"
            )
        inputs = {k: to_device(v, device) for k, v in batch.items() if k not in _RESERVED_KEYS}
        multimodal, unimodal = _split_output(model(**inputs))
        return multimodal, unimodal, to_device(batch[key], device), batch.get("index")
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        multimodal, unimodal = _split_output(model(*to_device(batch[:-1], device)))
        return multimodal, unimodal, to_device(batch[-1], device), None
    raise TypeError(
        "a batch must be a tuple (x_1, ..., x_M, y) or a mapping with a 'target' key, "
        f"got {type(batch).__name__}; pass forward= otherwise"
    )


def positional_order(loader: Iterable[Any]) -> Tensor | None:
    """The dataset indices a deterministic ``DataLoader`` visits, in order; ``None`` if unknown.

    Only a ``DataLoader`` says how it orders the dataset: a plain iterable of batches may have
    been shuffled, so nothing is assumed about it.
    """
    if not isinstance(loader, DataLoader):
        return None
    batch_sampler = loader.batch_sampler
    if batch_sampler is not None and not isinstance(batch_sampler, BatchSampler):
        return None
    sampler = loader.sampler
    if isinstance(sampler, SequentialSampler):
        return torch.arange(len(sampler))
    if isinstance(sampler, DistributedSampler) and not sampler.shuffle:
        return torch.tensor(list(sampler), dtype=torch.long)
    return None


def _unknown_order(loader: Iterable[Any]) -> CoverageError:
    if isinstance(loader, DataLoader):
        what = (
            f"the loader's sampler ({type(loader.sampler).__name__}) is not sequential"
            if loader.batch_sampler is None or isinstance(loader.batch_sampler, BatchSampler)
            else f"the loader's batch_sampler ({type(loader.batch_sampler).__name__}) has no "
            "known order"
        )
    else:
        what = f"the loader is a {type(loader).__name__}, not a DataLoader, so its order is unknown"
    return CoverageError(
        f"cannot tell which samples a batch holds: forward returned no indices and {what}; "
        "return indices from forward (or put an 'index' entry in each mapping batch), or use a "
        "DataLoader with a SequentialSampler (under torchrun: an unshuffled DistributedSampler)"
    )


def _progress(loader: Iterable[Any], enabled: bool, desc: str) -> Iterable[Any]:
    if not enabled or _dist.rank() != 0:
        return loader
    try:
        tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        return loader
    total = len(loader) if isinstance(loader, Sized) else None
    return tqdm(loader, total=total, desc=desc, unit="batch", leave=False)  # type: ignore[no-any-return]


def check_once(visits: Tensor, num_samples: int) -> None:
    """Every sample visited exactly once, up to what ``DistributedSampler``'s padding adds.

    ``visits`` are the valid updates of each sample summed over all ranks (e.g.
    ``BalanceScorer.compute(return_visits=True)``). ``DistributedSampler`` pads the dataset to a
    multiple of the world size by repeating its order from the start: fewer than ``world_size``
    extra visits in all, and no sample more than ``1 + ceil(extra / N)`` times (``N = 1`` on 3
    ranks: sample 0 three times). Nothing more is accepted. Raises `CoverageError`.
    """
    extra = int(visits.sum()) - num_samples
    limit = 1 + -(-extra // num_samples) if 0 < extra < _dist.world_size() else 1
    repeated = visits > limit
    if repeated.any() or (extra > 0 and limit == 1):
        over = visits > 1
        first = over.nonzero().flatten()[:5].tolist()
        raise CoverageError(
            f"the loader repeated {int(over.sum())} samples (first indices: {first}); a scoring "
            "loader must visit each sample of the dataset exactly once (under a process group, "
            "up to DistributedSampler's padding)"
        )


def _describe_dataset(dataset: Any, depth: int = 0) -> str:
    """``dataset`` with the wrappers that renumber samples spelt out, for an error message."""
    if depth > 3:
        return "..."
    if isinstance(dataset, Subset):
        return f"Subset({_describe_dataset(dataset.dataset, depth + 1)})"
    if isinstance(dataset, ConcatDataset):
        inner = ", ".join(_describe_dataset(d, depth + 1) for d in dataset.datasets[:3])
        return f"ConcatDataset([{inner}{', ...' if len(dataset.datasets) > 3 else ''}])"
    return type(dataset).__name__


def _is_wrapper(dataset: Any) -> bool:
    return isinstance(dataset, (Subset, ConcatDataset))


def _check_keyed(
    indices: Any, expected: Tensor, batch: int, loader: DataLoader[Any], source: str
) -> None:
    """Refuse indices that disagree with the positions the loader is known to visit."""
    given = indices if isinstance(indices, Tensor) else torch.as_tensor(indices)
    given = given.to("cpu", torch.int64)  # a device sync only for indices on an accelerator
    if given.shape == expected.shape and torch.equal(given, expected):
        return
    dataset = loader.dataset
    if _is_wrapper(dataset):
        why = (
            f"the loader's dataset is {_describe_dataset(dataset)}, which renumbers the samples "
            "of the dataset it wraps (Subset and random_split keep some of them, in their own "
            f"order; ConcatDataset numbers its parts one after the other): {source} numbers "
            "the wrapped dataset, so the scores would land on other samples"
        )
    else:
        why = f"{source} does not number the samples of the loader's dataset by position"
    raise CoverageError(
        f"batch {batch} of the loader holds the samples at positions {expected[:5].tolist()}"
        f"{'...' if len(expected) > 5 else ''} of its dataset ({type(loader.sampler).__name__} "
        f"visits it in order), but {source} says {given[:5].tolist()}"
        f"{'...' if len(given) > 5 else ''}: {why}. Drop the 'index' entry (with a "
        "sequential loader the pass uses the positions), or return each sample's position in "
        "the loader's dataset"
    )


def _warn_unchecked(loader: Iterable[Any], source: str) -> None:
    """Warn once per pass when a wrapper's renumbering cannot be checked (unknown order)."""
    dataset = getattr(loader, "dataset", None)
    if _is_wrapper(dataset):
        warnings.warn(
            f"the pass cannot check {source} against the loader's order (shuffled or custom): "
            f"make sure it gives positions in the loader's dataset, {_describe_dataset(dataset)}, "
            "not indices of the dataset it wraps, or the scores land on other samples; a "
            "sequential DataLoader lets the pass check it",
            stacklevel=4,
        )


def _trusted_hint(loader: Iterable[Any], source: str) -> str:
    """What may be wrong when indices the pass could not check turn out wrong."""
    dataset = getattr(loader, "dataset", None)
    where = (
        f"the loader's dataset is {_describe_dataset(dataset)}, which renumbers the samples of "
        "the dataset it wraps"
        if _is_wrapper(dataset)
        else "is the dataset wrapped in a Subset (random_split) or ConcatDataset, which "
        "renumber the samples?"
    )
    return (
        f". The indices came from {source}, which the pass cannot check against a shuffled "
        f"or custom order: {where}; {source} must give each sample's position in the dataset "
        "the loader draws from (or score with a sequential DataLoader, whose positions the "
        "pass knows)"
    )


def run_pass(
    model: nn.Module,
    loader: Iterable[Any],
    forward: PassForward,
    update: Callable[..., None],
    finish: Callable[[], _R],
    *,
    train_mode: bool = False,
    progress: bool = True,
    desc: str = "balance scores",
    source: str = "the indices forward returned",
) -> _R:
    """One pass of ``model`` over ``loader`` feeding a per-sample accumulator; ``finish()``'s value.

    What every per-sample pass shares: the model in eval mode (``train_mode=True``: train mode),
    every submodule's mode restored afterwards, ``torch.inference_mode()``, a progress bar on rank
    0 (``desc``), and each batch's dataset indices resolved. For each batch, ``output =
    forward(model, batch)`` is ``(value, ..., targets, indices or None)`` (one target per sample
    of the batch) and the pass calls ``update(indices, value, ..., targets)`` with the indices as
    an int64 tensor. Then ``finish()`` runs (the accumulator's one all-reduce and its checks, e.g.
    `check_once`) and its result is returned.

    Indices: where the loader's order is known (`positional_order`) the positions are used, and
    indices ``forward`` returns must agree with them (else `CoverageError` naming ``source`` and
    the dataset wrapper); elsewhere ``forward``'s indices are trusted, and an index error or
    `CoverageError` raised by ``update`` or ``finish`` says where they came from (``source``)
    and which wrapper may be the cause.
    """
    order = positional_order(loader)
    seen, trusted = 0, False  # trusted: forward's indices were used unchecked
    modes = {module: module.training for module in model.modules()}
    model.train(train_mode)
    try:
        with torch.inference_mode():
            for number, batch in enumerate(_progress(loader, progress, desc)):
                *values, indices = forward(model, batch)
                if order is None:
                    if indices is None:
                        raise _unknown_order(loader)
                    if not trusted:
                        _warn_unchecked(loader, source)
                    trusted = True
                    update(indices, *values)
                    continue
                size = len(values[-1]) if values else 0  # the targets: one per sample
                if seen + size > len(order):
                    raise CoverageError(
                        f"the loader yielded more than the {len(order)} samples it should"
                    )
                expected = order[seen : seen + size]
                seen += size
                if indices is not None:
                    assert isinstance(loader, DataLoader)  # a known order
                    _check_keyed(indices, expected, number, loader, source)
                update(expected, *values)
        return finish()
    except (CoverageError, IndexRangeError) as error:
        if not trusted:
            raise
        raise type(error)(f"{error}{_trusted_hint(loader, source)}") from error
    finally:
        for module, mode in modes.items():
            module.training = mode


@overload
def score_dataset(
    model: nn.Module,
    loader: Iterable[Any],
    num_samples: int,
    *,
    alpha: float = ...,
    criteria: Sequence[str] = ...,
    forward: Forward | None = ...,
    train_mode: bool = ...,
    progress: bool = ...,
    return_report: Literal[False] = ...,
) -> Tensor: ...


@overload
def score_dataset(
    model: nn.Module,
    loader: Iterable[Any],
    num_samples: int,
    *,
    alpha: float = ...,
    criteria: Sequence[str] = ...,
    forward: Forward | None = ...,
    train_mode: bool = ...,
    progress: bool = ...,
    return_report: Literal[True],
) -> tuple[Tensor, BalanceReport]: ...


def score_dataset(
    model: nn.Module,
    loader: Iterable[Any],
    num_samples: int,
    *,
    alpha: float = 0.2,
    criteria: Sequence[str] = CRITERIA,
    forward: Forward | None = None,
    train_mode: bool = False,
    progress: bool = True,
    return_report: bool = False,
) -> Tensor | tuple[Tensor, BalanceReport]:
    """Balance scores of all ``num_samples`` samples from one pass of ``model`` over ``loader``.

    Runs under ``torch.inference_mode()`` with the model in eval mode (``train_mode=True``: train
    mode, as the released code scores; BatchNorm statistics then move) and restores every
    submodule's mode afterwards. Accumulation stays on the model's device; under an initialised
    process group each rank scores its share and every rank returns the same scores.

    With ``return_report=True`` also returns the pass's `bss_sampler.BalanceReport` (accuracy
    and confidence of every head, the modalities' imbalance ratio, score quantiles), from the
    same all-reduce; e.g. ``scores, report = score_dataset(model, loader, n,
    return_report=True)`` and ``print(report)`` to see whether a model is imbalanced.

    Returns:
        float32 ``(num_samples,)`` on the CPU (Eq. 6), and the report when asked.

    Raises:
        CoverageError: the loader missed or repeated samples, or a batch without indices came
            from a loader whose order is unknown (anything but a ``DataLoader`` over a
            ``SequentialSampler`` or an unshuffled ``DistributedSampler``).
        ValueError: invalid logits, targets or indices (see `BalanceScorer.update`), or a
            ``forward`` that does not return four values.
    """
    train_mode = check_bool("train_mode", train_mode)
    progress = check_bool("progress", progress)
    return_report = check_bool("return_report", return_report)
    scorer = BalanceScorer(num_samples, alpha=alpha, criteria=criteria, device=model_device(model))
    user_forward = default_forward if forward is None else forward

    def checked_forward(model: nn.Module, batch: Any) -> ForwardOutput:
        output = user_forward(model, batch)
        if not isinstance(output, (tuple, list)) or len(output) != 4:
            raise ValueError(
                "forward must return (multimodal_logits, unimodal_logits, targets, "
                f"indices or None), got {describe(output)}"
            )
        return output

    def finish() -> Tensor:
        scores, visits = scorer.compute(return_visits=True)  # the pass's one all-reduce
        check_once(visits, num_samples)
        return scores

    scores = run_pass(
        model,
        loader,
        checked_forward,
        scorer.update,
        finish,
        train_mode=train_mode,
        progress=progress,
        source="the batches' 'index' entry" if forward is None else "the indices forward returned",
    )
    if return_report:
        assert scorer.last_report is not None  # compute() saw every sample, so M is known
        return scores, scorer.last_report
    return scores
