"""What every framework integration needs: the scoring loader, finding the sampler and its
valuation pass, restoring a checkpoint inside an epoch, a summary to log.

Imports nothing beyond torch and this package.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any, Callable, Union, cast

from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .. import _dist
from .._checks import check_int
from ..protocol import ScoredSampler, ValuedSampler

__all__ = [
    "BSSSampler",
    "ValuationPass",
    "find_sampler",
    "pass_settings",
    "report_metrics",
    "restore_at_epoch_start",
    "score_summary",
    "scoring_loader",
    "state_at",
    "valuation_pass",
]

BSSSampler = Union[ScoredSampler, ValuedSampler]
"""What the integrations work with: any sampler valued by ``update_scores``
(`bss_sampler.ScoredSampler`: the BSS samplers) or ``update_values``
(`bss_sampler.protocol.ValuedSampler`: `bss_sampler.SMVSampler`)."""

ValuationPass = Callable[[nn.Module, Iterable[Any]], Tensor]
"""``run(model, loader)``: the sampler's valuation pass with the integration's settings bound."""


def scoring_loader(
    dataset: Sized,
    batch_size: int,
    *,
    num_replicas: int | None = None,
    rank: int | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    num_workers: int = 0,
) -> DataLoader[Any]:
    """An unshuffled loader over this rank's share of ``dataset``, for ``update_scores``.

    With more than one replica (``num_replicas``/``rank``, by default the initialised process
    group's) each rank gets its ``DistributedSampler(shuffle=False)`` share and ``update_scores``
    all-reduces the scores, so every rank ends with the same scores; with one, the whole
    dataset in order.

    >>> loader = scoring_loader(range(5), batch_size=2, num_replicas=2, rank=1)
    >>> [index for batch in loader for index in batch.tolist()]  # padded as DistributedSampler
    [1, 3, 0]
    """
    batch_size = check_int("batch_size", batch_size, 1)
    data = cast("Dataset[Any]", dataset)  # a map-style dataset; only Sized is needed to type it
    replicas = _dist.world_size() if num_replicas is None else num_replicas
    replicas = check_int("num_replicas", replicas, 1)
    rank = _dist.rank() if rank is None else rank
    sampler: DistributedSampler[Any] | None = None
    if replicas > 1:
        sampler = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=False)
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
    )


def find_sampler(loader: Any) -> BSSSampler:
    """The scored sampler a ``DataLoader`` draws from (its ``sampler``, or its batch sampler's):
    whatever satisfies `bss_sampler.ScoredSampler`, not a fixed list of classes.

    Raises:
        TypeError: when neither is one.
    """
    candidates: list[Sampler[Any] | None] = [getattr(loader, "sampler", None)]
    batch_sampler = getattr(loader, "batch_sampler", None)
    candidates.append(getattr(batch_sampler, "sampler", None))
    for sampler in candidates:
        if isinstance(sampler, (ScoredSampler, ValuedSampler)):
            return sampler
    found = ", ".join(type(s).__name__ for s in candidates if s is not None) or "none"
    raise TypeError(
        "the training DataLoader must draw from a scored sampler: LearnedBalanceSampler, "
        "HeuristicCurriculumSampler, SMVSampler, or any sampler satisfying "
        "bss_sampler.ScoredSampler (update_scores) or bss_sampler.protocol.ValuedSampler "
        f"(update_values), as DataLoader(dataset, sampler=sampler); found {found}"
    )


def _pass_method(sampler: BSSSampler) -> tuple[str, Callable[..., Tensor]]:
    if isinstance(sampler, ScoredSampler):
        return "update_scores", sampler.update_scores
    return "update_values", sampler.update_values


def pass_settings(
    named: Mapping[str, Any], settings: Mapping[str, Any] | None, *, owner: str
) -> dict[str, Any]:
    """An integration's settings for the valuation pass: its ``named`` keywords (``alpha=``,
    ``forward=``, ...) and the ``settings`` mapping of a new method's own, each given once
    (``TypeError`` naming ``owner`` otherwise)."""
    extra = dict(settings or {})
    twice = sorted(key for key, value in named.items() if value is not None and key in extra)
    if twice:
        raise TypeError(
            f"{owner} got {twice} both as arguments and in settings={extra!r}: give each once"
        )
    return {**extra, **named}


def valuation_pass(
    sampler: BSSSampler, settings: Mapping[str, Any], *, owner: str
) -> ValuationPass:
    """The sampler's valuation pass (``update_scores`` or ``update_values``) with ``settings``
    bound as keywords and ``progress=False``.

    ``settings``: the keyword arguments the integration was given for the pass (``None`` values
    are left out: the pass's defaults apply). Each is checked against the pass's signature
    here, before any training, so a setting the method does not take (``alpha`` for
    `bss_sampler.SMVSampler`) or one it needs and did not get (SMV's ``forward``) is refused
    with a ``TypeError`` that names it, its value and ``owner`` (where to pass it).
    """
    name, method = _pass_method(sampler)
    given = {key: value for key, value in settings.items() if value is not None}
    where = f"{type(sampler).__name__}.{name}"
    parameters = inspect.signature(method).parameters
    keywords = {
        key: p
        for key, p in parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and key not in ("model", "loader")
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    for key, value in given.items():
        if key not in keywords and not takes_any:
            accepted = ", ".join(k for k in keywords if k != "progress") or "no settings"
            raise TypeError(
                f"{owner}({key}={value!r}): {where} takes no {key!r} (its settings: "
                f"{accepted}); pass only the settings of the sampler's own valuation pass"
            )
    missing = [
        key
        for key, p in keywords.items()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty and key not in given
    ]
    if missing:
        needed = ", ".join(f"{key}=..." for key in missing)
        raise TypeError(f"{where} needs {needed}: pass {owner}({needed})")
    quiet = "progress" not in given and ("progress" in keywords or takes_any)
    extra = {"progress": False} if quiet else {}

    def run(model: nn.Module, loader: Iterable[Any]) -> Tensor:
        return method(model, loader, **given, **extra)

    return run


def restore_at_epoch_start(sampler: BSSSampler, state: Mapping[str, Any], *, remedy: str) -> None:
    """Load a sampler ``state`` saved at its position inside an epoch, then rewind the sampler to
    that epoch's start (the framework skips the batches already trained).

    Loading the state at its position first makes the sampler check that it regenerates the
    epoch's order (`bss_sampler.core.PolicySampler.load_state_dict`): a framework that skips
    batches of another order would train some samples twice and others never. When only the
    position is refused (the same state rewound loads), the ``ValueError`` ends with
    ``remedy``: how to train the epoch again from its start through this framework. All or
    nothing: on an error the sampler is left as it was.
    """
    try:
        sampler.load_state_dict(state)
    except ValueError as error:
        probe = copy.deepcopy(sampler)
        try:
            probe.load_state_dict({**state, "yielded": 0})
        except (ValueError, KeyError):
            raise error from None
        raise ValueError(f"{error}. Through this integration: {remedy}") from None
    if state["yielded"] != 0:
        sampler.load_state_dict({**state, "yielded": 0})


def state_at(sampler: BSSSampler, taken: int) -> dict[str, Any]:
    """The sampler's state ``taken`` samples into its current epoch's order (at most the
    epoch's length), or where its pass started when that is later: what a framework that
    counts the batches trained saves, so that a resume checks the epoch's order."""
    at_start = sampler.state_dict(consumed=0)  # where this epoch's pass started
    taken = min(taken, sampler.epoch_length())
    if taken <= at_start["yielded"]:
        return at_start
    return sampler.state_dict(consumed=taken - at_start["yielded"])


def report_metrics(report: object, names: Sequence[str] | None = None) -> dict[str, float]:
    """A valuation pass's report as flat numbers for a logger, histogram bins left out.

    `bss_sampler.BalanceReport`: its ``as_dict(names)``. Another method's report (a dataclass,
    e.g. `bss_sampler.smv.ValuationReport`): each number by its field's name, each per-modality
    tuple as ``<modality name>_<field>``.
    """
    as_dict = getattr(report, "as_dict", None)
    if callable(as_dict):
        rows = cast("dict[str, float]", as_dict(names))
        return {key: float(value) for key, value in rows.items() if "_bin" not in key}
    if not dataclasses.is_dataclass(report) or isinstance(report, type):
        raise TypeError(
            "a sampler's last_report must have as_dict(names) or be a dataclass of numbers and "
            f"per-modality tuples, got {type(report).__name__}"
        )
    metrics: dict[str, float] = {}
    for field in dataclasses.fields(report):
        value = getattr(report, field.name)
        if isinstance(value, (tuple, list)):
            labels = [f"modality{m}" for m in range(len(value))] if names is None else names
            if len(labels) != len(value):
                raise ValueError(
                    f"modality_names must name the {len(value)} modalities of the report, got "
                    f"{list(labels)}"
                )
            metrics.update((f"{label}_{field.name}", float(v)) for label, v in zip(labels, value))
        elif isinstance(value, (int, float)):
            metrics[field.name] = float(value)
    return metrics


def score_summary(sampler: BSSSampler) -> dict[str, float]:
    """Mean, min and max of the sampler's newest scores and the epoch they were set for.

    Empty before any scores, and for a sampler without ``scores`` (`bss_sampler.SMVSampler`:
    its valuation is logged through its report).
    """
    scores = getattr(sampler, "scores", None)
    if not isinstance(scores, Tensor) or scores.numel() == 0:
        return {}
    return {
        "score_mean": float(scores.mean()),
        "score_min": float(scores.min()),
        "score_max": float(scores.max()),
        "scores_epoch": float(getattr(sampler, "scores_epoch", None) or 0),
    }
