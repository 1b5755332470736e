"""What BSS's two samplers add to the core: balance scores (Eq. 4-6) as the valuation.

`BalanceSampler` is a `bss_sampler.core.PolicySampler` whose valuation is one balance score per
sample (higher = more balanced), set by `BalanceSampler.set_scores` or computed by
`BalanceSampler.update_scores` with one scoring pass (`bss_sampler.score_dataset`). The scoring
settings (``alpha`` of Eq. 5, ``criteria`` of Eq. 6, ``train_mode``) are arguments of that pass,
never of the sampler: the sampler holds only order state. Its ``preset`` gives their defaults
(``preset="official"`` scores in train mode, as the released code).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any

from torch import Tensor, nn

from ._checks import NO_SCORES
from .core import OrderPolicy, PolicySampler, user_stacklevel
from .functional import CRITERIA
from .presets import Preset
from .report import BalanceReport
from .scoring import Forward, score_dataset

__all__ = ["BalanceSampler", "refuse_scoring_settings"]

_SCORING_DEFAULTS: dict[str, Any] = {"alpha": 0.2, "criteria": ",".join(CRITERIA)}


def _setting(key: str, value: Any) -> Any:
    """A saved scoring setting as ``update_scores`` takes it. 0.1.0 wrote ``criteria`` joined by
    commas ("loss,similarity"): that is a tuple of criteria, whose order Eq. 6 does not depend
    on, so it is put in `CRITERIA`'s order (``("similarity", "loss")``)."""
    if key != "criteria" or not isinstance(value, str):
        return value
    parts = value.split(",")
    return tuple(c for c in CRITERIA if c in parts) + tuple(sorted(set(parts) - set(CRITERIA)))


def _where_settings_go(settings: Mapping[str, Any]) -> str:
    """The calls that take scoring ``settings`` (values as `_setting` gives them): the scoring
    pass, and the integrations that run it for their users."""
    given = ", ".join(f"{key}={_setting(key, value)!r}" for key, value in settings.items())
    trainer = ", ".join(f"bss_{key}={_setting(key, value)!r}" for key, value in settings.items())
    return (
        f"sampler.update_scores(model, loader, {given}); where an integration runs the pass, "
        f"to the integration: BalanceSamplingCallback({given}) (Lightning), "
        f"BalanceSamplingTrainer(..., {trainer}) (Hugging Face)"
    )


def refuse_scoring_settings(sampler: str, removed: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` for keywords a sampler no longer takes, saying where each one went."""
    if not removed:
        return
    settings = {"alpha", "criteria", "train_mode"}
    unknown = sorted(set(removed) - settings)
    if unknown:
        raise TypeError(f"{sampler}() got unexpected keyword arguments {unknown}")
    moved = ", ".join(f"{key}={_setting(key, value)!r}" for key, value in removed.items())
    raise TypeError(
        f"{sampler}() no longer takes the scoring settings {moved}: the sampler holds only its "
        f"order (BalanceScorer(...) takes them for online scoring). Pass them to each scoring "
        f"pass, {_where_settings_go(removed)}. preset= still sets train_mode's default"
    )


class BalanceSampler(PolicySampler):
    """A `bss_sampler.core.PolicySampler` ordered by balance scores (the two BSS samplers).

    Args:
        data_source: the dataset (only its length is used).
        policy: the ordering (`bss_sampler.heuristic.CurriculumPolicy` or
            `bss_sampler.learned.SoftmaxPolicy`).
        preset: the preset whose ordering half built ``policy`` and whose scoring half gives
            `update_scores` its defaults.
        **shard: ``seed``, ``num_replicas``, ``rank``, ``global_order``, ``drop_last`` of
            `bss_sampler.core.PolicySampler`.
    """

    no_values_hint = NO_SCORES

    def __init__(
        self, data_source: Sized, policy: OrderPolicy, *, preset: Preset, **shard: Any
    ) -> None:
        super().__init__(data_source, policy, **shard)
        self.preset = preset
        self._last_report: BalanceReport | None = None  # of the newest scores; not checkpointed

    @property
    def train_mode(self) -> bool:
        """`update_scores`' default ``train_mode``: the preset's (``"official"``: True)."""
        return self.preset.train_mode

    @property
    def scores(self) -> Tensor | None:
        """The newest balance scores (a copy), or ``None``: what the next epoch draws from."""
        newest = self._newest_values()
        return None if newest is None else newest.clone()

    @property
    def scores_epoch(self) -> int | None:
        """The epoch the newest scores are for (``None`` before any scores): the epoch they were
        set for, or, when set before the sampler drew any epoch (a warm-up, a loop from
        ``start_epoch > 0``), the epoch it then draws first. `values_epoch` under its BSS name."""
        return self.values_epoch

    @property
    def last_report(self) -> BalanceReport | None:
        """What the newest scoring saw: a `bss_sampler.BalanceReport` (per-modality accuracy and
        confidence, imbalance ratio, quantiles of the new scores and of the scores in use after
        the EMA), identical on every rank.

        Set by `update_scores`, and by `set_scores` when given a ``report``; ``None`` before,
        after `set_scores` without one, and after `load_state_dict` (it is not checkpointed).
        """
        return self._last_report

    def set_scores(
        self, scores: Tensor | Sequence[float], *, report: BalanceReport | None = None
    ) -> Tensor:
        """Use ``scores`` (one per sample, higher = more balanced), e.g. from an online scorer.

        Before the current epoch has started they apply to it; once it has started (or was
        resumed mid-way) they apply from the next ``set_epoch``, so a started epoch never changes
        its order. Returns the newest scores (for the learned sampler, after the EMA of Eq. 9).

        ``report``: the scorer's `bss_sampler.BalanceScorer.last_report` of these scores; it
        becomes `last_report`, with the quantiles of the returned scores as its
        ``ema_score_quantiles``.
        """
        if report is not None and (
            not isinstance(report, BalanceReport) or report.num_samples != self.num_samples
        ):
            raise ValueError(
                f"report must be a BalanceReport of {self.num_samples} samples (the scorer's "
                f"last_report), got {report!r}"
            )
        used = self.set_values(scores, "scores")
        self._last_report = None if report is None else report.with_ema_scores(used)
        return used

    def update_scores(
        self,
        model: nn.Module,
        loader: Iterable[Any],
        *,
        alpha: float | None = None,
        criteria: Sequence[str] | None = None,
        forward: Forward | None = None,
        train_mode: bool | None = None,
        progress: bool = True,
    ) -> Tensor:
        """Score every sample with one pass of ``model`` over ``loader`` and use the scores.

        The scoring settings are this pass's: ``alpha`` (Eq. 5), ``criteria`` (Eq. 6) and
        ``train_mode`` as in `bss_sampler.score_dataset`; ``None`` takes its defaults, and
        ``train_mode=None`` the preset's (``"official"``: train mode). ``loader`` must visit the
        dataset exactly once (under ``torchrun``: each rank its unshuffled share). Every rank
        ends with identical scores. They apply as in `set_scores`. Returns the newest scores;
        what the pass saw (accuracy and confidence per modality, score quantiles) is then in
        `last_report`.
        """
        settings: dict[str, Any] = {"alpha": alpha, "criteria": criteria}
        scores, report = score_dataset(
            model,
            loader,
            self.num_samples,
            **{key: value for key, value in settings.items() if value is not None},
            forward=forward,
            train_mode=self.train_mode if train_mode is None else train_mode,
            progress=progress,
            return_report=True,
        )
        return self.set_scores(scores, report=report)

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "preset": self.preset.name}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict` (see `bss_sampler.core.PolicySampler.load_state_dict`).

        A state written by 0.1.0 also holds the scoring settings its sampler had; where they
        differ from `update_scores`' defaults here, a warning names them (pass them to
        `update_scores` to keep scoring as before).
        """
        super().load_state_dict(state)
        config = state["config"]
        defaults = {**_SCORING_DEFAULTS, "train_mode": self.train_mode}
        moved = {
            key: config[key]
            for key in defaults
            if key in config and _setting(key, config[key]) != _setting(key, defaults[key])
        }
        if moved:
            given = ", ".join(f"{key}={_setting(key, value)!r}" for key, value in moved.items())
            warnings.warn(
                f"state_dict was saved by a sampler that scored with {given}; samplers no "
                f"longer hold scoring settings: pass them to each pass, "
                f"{_where_settings_go(moved)}",
                stacklevel=user_stacklevel(),
            )

    def _loaded(self) -> None:
        self._last_report = None
