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
value.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping, Sequence, Sized
from itertools import chain
from typing import Any, Callable, Optional, Tuple, overload  # noqa: UP035 (runtime alias on 3.9)

import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, SequentialSampler

from . import _dist
from ._checks import check_bool
from .functional import CRITERIA
from .report import BalanceReport
from .scorer import BalanceScorer, CoverageError, UnimodalLogits

if sys.version_info >= (3, 10):  # pragma: no cover
    from typing import Literal
else:  # pragma: no cover
    from typing_extensions import Literal

__all__ = ["CoverageError", "Forward", "ForwardOutput", "default_forward", "score_dataset"]

ForwardOutput = Tuple[Tensor, UnimodalLogits, Tensor, Optional[Tensor]]  # noqa: UP006
"""``(multimodal_logits, unimodal_logits, targets, indices or None)``."""

Forward = Callable[[nn.Module, Any], ForwardOutput]
"""``forward(model, batch) -> ForwardOutput``."""

_TARGET_KEYS = ("target", "label")
_RESERVED_KEYS = (*_TARGET_KEYS, "index")


def _model_device(model: nn.Module) -> torch.device:
    for tensor in chain(model.parameters(), model.buffers()):  # lazily: the first one
        return tensor.device
    return torch.device("cpu")


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: _to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(value, device) for value in batch)
    return batch


def _describe(value: Any) -> str:
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
        f"keys 'multimodal' and 'unimodal', but its output was {_describe(output)}; pass "
        "forward= otherwise"
    )


def default_forward(model: nn.Module, batch: Any) -> ForwardOutput:
    """Run ``model`` on ``batch`` following the module's conventions (see the module docstring)."""
    batch = _to_device(batch, _model_device(model))
    if isinstance(batch, Mapping):
        key = next((k for k in _TARGET_KEYS if k in batch), None)
        if key is None:
            raise KeyError(
                f"a mapping batch needs one of the keys {_TARGET_KEYS}, got {list(batch)}"
            )
        inputs = {k: v for k, v in batch.items() if k not in _RESERVED_KEYS}
        multimodal, unimodal = _split_output(model(**inputs))
        return multimodal, unimodal, batch[key], batch.get("index")
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        multimodal, unimodal = _split_output(model(*batch[:-1]))
        return multimodal, unimodal, batch[-1], None
    raise TypeError(
        "a batch must be a tuple (x_1, ..., x_M, y) or a mapping with a 'target' key, "
        f"got {type(batch).__name__}; pass forward= otherwise"
    )


def _positional_order(loader: Iterable[Any]) -> Tensor | None:
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


def _progress(loader: Iterable[Any], enabled: bool) -> Iterable[Any]:
    if not enabled or _dist.rank() != 0:
        return loader
    try:
        tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        return loader
    total = len(loader) if isinstance(loader, Sized) else None
    return tqdm(loader, total=total, desc="balance scores", unit="batch", leave=False)  # type: ignore[no-any-return]


def _check_once(visits: Tensor, num_samples: int) -> None:
    """Every sample visited exactly once, up to what ``DistributedSampler``'s padding adds.

    ``DistributedSampler`` pads the dataset to a multiple of the world size by repeating its
    order from the start: fewer than ``world_size`` extra visits in all, and no sample more than
    ``1 + ceil(extra / N)`` times (``N = 1`` on 3 ranks: sample 0 three times). Nothing more is
    accepted.
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
    forward = default_forward if forward is None else forward
    train_mode = check_bool("train_mode", train_mode)
    progress = check_bool("progress", progress)
    return_report = check_bool("return_report", return_report)
    scorer = BalanceScorer(num_samples, alpha=alpha, criteria=criteria, device=_model_device(model))
    order = _positional_order(loader)
    seen = 0
    modes = {module: module.training for module in model.modules()}
    model.train(train_mode)
    try:
        with torch.inference_mode():
            for batch in _progress(loader, progress):
                output = forward(model, batch)
                if not isinstance(output, (tuple, list)) or len(output) != 4:
                    raise ValueError(
                        "forward must return (multimodal_logits, unimodal_logits, targets, "
                        f"indices or None), got {_describe(output)}"
                    )
                multimodal, unimodal, targets, indices = output
                if indices is None:
                    if order is None:
                        raise _unknown_order(loader)
                    size = multimodal.shape[0] if isinstance(multimodal, Tensor) else 0
                    if seen + size > len(order):
                        raise CoverageError(
                            f"the loader yielded more than the {len(order)} samples it should"
                        )
                    indices = order[seen : seen + size]
                    seen += size
                scorer.update(indices, multimodal, unimodal, targets)
    finally:
        for module, mode in modes.items():
            module.training = mode
    scores, visits = scorer.compute(return_visits=True)  # the pass's one all-reduce
    _check_once(visits, num_samples)
    if return_report:
        assert scorer.last_report is not None  # compute() saw every sample, so M is known
        return scores, scorer.last_report
    return scores
