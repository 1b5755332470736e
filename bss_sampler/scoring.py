"""The scoring pass: run a model over a loader once and score every sample (Eq. 4-6).

Batch and model conventions of :func:`default_forward`:

* a batch is a tuple ``(x_1, ..., x_M, y)``: the model is called as ``model(x_1, ..., x_M)``;
* or a mapping: ``batch["target"]`` (or ``"label"``) holds the labels, optional
  ``batch["index"]`` the dataset indices, and every other entry is passed to the model as a
  keyword argument: ``model(audio=..., video=...)``;
* the model returns ``(multimodal_logits, [unimodal_logits_1, ..., unimodal_logits_M])`` or a
  mapping with the keys ``"multimodal"`` and ``"unimodal"``.

Anything else is handled by passing ``forward(model, batch) -> (multimodal_logits,
unimodal_logits, targets, indices)``; ``indices=None`` means *positional*: the loader visits the
dataset in order (a ``SequentialSampler``, or an unshuffled ``DistributedSampler`` under
``torchrun``), and the pass recovers each batch's indices from that order.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence, Sized
from itertools import chain
from typing import Any, Callable, Optional, Tuple  # noqa: UP035 (runtime alias on 3.9)

import torch
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, SequentialSampler

from . import _dist
from .functional import CRITERIA
from .scorer import BalanceScorer, CoverageError, UnimodalLogits

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


def _split_output(output: Any) -> tuple[Tensor, UnimodalLogits]:
    if isinstance(output, Mapping) and "multimodal" in output and "unimodal" in output:
        return output["multimodal"], output["unimodal"]
    if isinstance(output, (tuple, list)) and len(output) == 2:
        return output[0], output[1]
    raise TypeError(
        "the model must return (multimodal_logits, [unimodal_logits, ...]) or a mapping with the "
        f"keys 'multimodal' and 'unimodal', got {type(output).__name__}; pass forward= otherwise"
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


def _positional_order(loader: Iterable[Any], num_samples: int) -> Tensor | None:
    """The dataset indices a deterministic loader visits, in order; ``None`` if unknown."""
    if not isinstance(loader, DataLoader):
        return torch.arange(num_samples)
    batch_sampler = loader.batch_sampler
    if batch_sampler is not None and not isinstance(batch_sampler, BatchSampler):
        return None
    sampler = loader.sampler
    if isinstance(sampler, SequentialSampler):
        return torch.arange(len(sampler))
    if isinstance(sampler, DistributedSampler) and not sampler.shuffle:
        return torch.tensor(list(sampler), dtype=torch.long)
    return None


def _progress(loader: Iterable[Any], enabled: bool) -> Iterable[Any]:
    if not enabled or _dist.rank() != 0:
        return loader
    try:
        tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        return loader
    total = len(loader) if isinstance(loader, Sized) else None
    return tqdm(loader, total=total, desc="balance scores", unit="batch", leave=False)  # type: ignore[no-any-return]


def _check_once(count: Tensor, num_samples: int) -> None:
    """Every sample scored exactly once; distributed padding (< world size repeats) is allowed."""
    repeated = count > 1
    extra = int((count.sum() - num_samples).item())
    padding_ok = _dist.is_distributed() and extra < _dist.world_size() and bool((count <= 2).all())
    if repeated.any() and not padding_ok:
        first = repeated.nonzero().flatten()[:5].tolist()
        raise CoverageError(
            f"the loader repeated {int(repeated.sum())} samples (first indices: {first}); a "
            "scoring loader must visit each sample of the dataset exactly once"
        )


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
) -> Tensor:
    """Balance scores of all ``num_samples`` samples from one pass of ``model`` over ``loader``.

    Runs under ``torch.inference_mode()`` with the model in eval mode (``train_mode=True``: train
    mode, as the released code scores; BatchNorm statistics then move) and restores every
    submodule's mode afterwards. Accumulation stays on the model's device; under an initialised
    process group each rank scores its share and every rank returns the same scores.

    Returns:
        float32 ``(num_samples,)`` on the CPU (Eq. 6).

    Raises:
        CoverageError: the loader missed or repeated samples.
    """
    forward = forward or default_forward
    device = _model_device(model)
    scorer = BalanceScorer(num_samples, alpha=alpha, criteria=criteria, device=device)
    order = _positional_order(loader, num_samples)
    seen = 0
    modes = {module: module.training for module in model.modules()}
    model.train(train_mode)
    try:
        with torch.inference_mode():
            for batch in _progress(loader, progress):
                multimodal, unimodal, targets, indices = forward(model, batch)
                size = multimodal.shape[0]
                if indices is None:
                    if order is None:
                        raise CoverageError(
                            "cannot tell which samples a batch holds: the loader's sampler "
                            f"({type(getattr(loader, 'sampler', None)).__name__}) is not "
                            "sequential; use an unshuffled loader or have forward return indices"
                        )
                    if seen + size > len(order):
                        raise CoverageError(
                            f"the loader yielded more than the {len(order)} samples it should"
                        )
                    indices = order[seen : seen + size]
                scorer.update(indices, multimodal, unimodal, targets)
                seen += size
    finally:
        for module, mode in modes.items():
            module.training = mode
    scores, visits = scorer.compute(return_visits=True)  # the pass's one all-reduce
    _check_once(visits, num_samples)
    return scores
