"""``--preset official`` in the examples: each dataset's released loss weights, ``drop_last``,
augmented scoring and Twitter2015's eval-mode scoring (issue: the released code's quirks)."""

from __future__ import annotations

import argparse
import importlib
import math
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from bss_sampler import BalanceScorer
from examples import audio_video
from examples.common.cli import add_common_args
from examples.common.models import joint_loss
from examples.common.released import RELEASED, ReleasedScript, released_script, resolve_preset
from examples.common.script import scoring_seed

#: ``--dataset`` -> (script, the flags it needs besides ``--dataset``).
SCRIPTS: dict[str, tuple[str, list[str]]] = {
    "cremad": ("audio_video", ["--root", "r"]),
    "ks": ("audio_video", ["--root", "r"]),
    "vggsound": ("audio_video", ["--root", "r"]),
    "twitter2015": ("image_text", ["--root", "r", "--bert", "b"]),
    "sarcasm": ("image_text", ["--root", "r", "--bert", "b"]),
    "nvgesture": ("trimodal", ["--root", "r"]),
}
NEEDS = {"image_text": "transformers", "trimodal": "cv2"}
#: The released training losses, as read in the scripts: ``(w_multi, w_uni)``.
RELEASED_LOSS = {"cremad": (0.1, 0.9)} | {k: (1.0, 1.0) for k in SCRIPTS if k != "cremad"}


def script(dataset: str) -> ModuleType:
    name = SCRIPTS[dataset][0]
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    return importlib.import_module(f"examples.{name}")


def parse(dataset: str, *flags: str) -> argparse.Namespace:
    return script(dataset).parse_args(["--dataset", dataset, *SCRIPTS[dataset][1], *flags])


def test_every_dataset_has_its_released_script() -> None:
    assert set(RELEASED) == set(SCRIPTS)
    assert {k: s.loss_weights for k, s in RELEASED.items()} == RELEASED_LOSS
    assert released_script("mfeat") == ReleasedScript()  # the common convention


@pytest.mark.parametrize("dataset", sorted(SCRIPTS))
def test_official_preset_sets_the_released_weights(dataset: str) -> None:
    args = parse(dataset, "--preset", "official")
    multi, uni = RELEASED_LOSS[dataset]
    assert args.loss_weights == (multi, uni)  # the training loss, at the released scale
    assert args.alpha == pytest.approx(uni / (multi + uni))  # CREMA-D 0.9, the others 0.5
    assert args.drop_last is True

    paper = parse(dataset)
    assert (paper.alpha, paper.loss_weights) == (0.2, (0.8, 0.2))  # Eq. 5
    assert paper.drop_last is False and paper.score_train_mode is None

    explicit = parse(dataset, "--preset", "official", "--alpha", "0.3")
    assert (explicit.alpha, explicit.loss_weights) == (0.3, (0.7, 0.3))  # Eq. 5 again
    assert parse(dataset, "--preset", "official", "--no-drop-last").drop_last is False


@pytest.mark.parametrize("dataset", sorted(SCRIPTS))
@pytest.mark.parametrize("sampler", ["heuristic", "learned"])
def test_only_twitter_learned_scores_in_eval_mode(dataset: str, sampler: str) -> None:
    args = parse(dataset, "--preset", "official", "--sampler", sampler)
    expected = False if (dataset, sampler) == ("twitter2015", "learned") else None  # None: train
    assert args.score_train_mode is expected
    assert args.score_augmented is True
    assert parse(dataset, "--sampler", sampler).score_augmented is False
    forced = parse(dataset, "--preset", "official", "--sampler", sampler, "--score-train-mode")
    assert forced.score_train_mode is True


def test_resolving_is_idempotent_and_fills_the_quickstart() -> None:
    parser = add_common_args(argparse.ArgumentParser(), methods=["joint"])
    args = parser.parse_args(["--preset", "official"])
    once = resolve_preset(args)
    assert vars(resolve_preset(once)) == vars(once)
    assert args.alpha is None  # a copy: the parsed flags are left as they were
    assert (once.alpha, once.loss_weights, once.drop_last) == (0.5, (1.0, 1.0), True)


def ce(logits: list[float], target: int) -> float:
    """Cross-entropy by hand: ``log sum exp(z) - z_target``."""
    return math.log(sum(math.exp(z) for z in logits)) - logits[target]


class FixedLogits(nn.Module):
    def __init__(self, multi: Tensor, uni: list[Tensor]) -> None:
        super().__init__()
        self.multi, self.uni = multi, uni

    def forward(self, **inputs: Tensor) -> tuple[Tensor, list[Tensor]]:
        return self.multi, self.uni


@pytest.mark.parametrize("dataset", sorted(SCRIPTS))
def test_training_loss_is_the_released_formula(dataset: str) -> None:
    multi = [[2.0, -1.0, 0.5], [0.0, 0.3, -0.2]]
    heads = [[[0.1, 1.5, -0.3], [1.0, 1.0, 0.0]], [[-2.0, 0.0, 2.0], [0.4, -0.4, 0.9]]]
    if dataset == "nvgesture":
        heads.append([[0.7, 0.0, -0.7], [3.0, 0.1, 0.2]])
    targets = [0, 2]
    args = parse(dataset, "--preset", "official")
    batch = {"target": torch.tensor(targets), "index": torch.arange(2)}
    model = FixedLogits(torch.tensor(multi), [torch.tensor(h) for h in heads])
    if dataset in ("cremad", "ks", "vggsound"):  # the script's own training step
        loss = audio_video.training_step(model, model, batch, args, torch.device("cpu"))[0]
    else:
        loss = joint_loss(model()[0], model()[1], batch["target"], args.loss_weights)

    def released(i: int) -> float:  # as the scripts write it, per sample
        uni = sum(ce(h[i], targets[i]) for h in heads)
        if dataset == "cremad":
            return 0.1 * ce(multi[i], targets[i]) + 0.9 * uni
        return ce(multi[i], targets[i]) + uni

    assert loss.item() == pytest.approx((released(0) + released(1)) / 2, rel=1e-6)


def minmax(x: Tensor) -> Tensor:
    return (x - x.min()) / (x.max() - x.min())


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 30),
    modalities=st.sampled_from([2, 3]),
    scale=st.floats(0.5, 10.0),
    dataset=st.sampled_from(sorted(RELEASED)),
)
def test_scores_of_the_resolved_alpha_equal_the_released_scores(
    seed: int, n: int, modalities: int, scale: float, dataset: str
) -> None:
    """Min-max is scale-free: the unweighted sum scores as ``alpha = 0.5``, CREMA-D's
    ``0.1 CE_multi + 0.9 sum CE_uni`` as ``alpha = 0.9``."""
    g = torch.Generator().manual_seed(seed)
    multi = scale * torch.randn(n, 4, generator=g, dtype=torch.float64)
    uni = [scale * torch.randn(n, 4, generator=g, dtype=torch.float64) for _ in range(modalities)]
    y = torch.randint(0, 4, (n,), generator=g)
    w_multi, w_uni = released_script(dataset).loss_weights
    loss = w_multi * F.cross_entropy(multi, y, reduction="none")
    loss = loss + w_uni * sum(F.cross_entropy(u, y, reduction="none") for u in uni)
    probs = [F.normalize(u.softmax(-1), dim=-1) for u in uni]
    pairs = [(probs[i] * probs[j]).sum(-1) for i in range(modalities) for j in range(i)]
    sim = torch.stack(pairs).mean(0)
    # The scorer works in float32: keep the spans wide enough for a 5e-5 round-off after min-max
    # (a zero span divides by zero in the released code).
    assume(float(loss.max() - loss.min()) > 1e-2 and float(sim.max() - sim.min()) > 1e-2)
    released = minmax(sim) - minmax(loss)

    scorer = BalanceScorer(n, alpha=released_script(dataset).alpha)
    scorer.update(torch.arange(n), multi, uni, y)
    torch.testing.assert_close(scorer.compute().double(), released, atol=5e-5, rtol=0)


TINY_AV = [
    "--width", "4", "--frames", "2", "--image-size", "16", "--sample-rate", "8000",
    "--audio-seconds", "0.25", "--batch-size", "4", "--no-progress", "--quiet",
    "--lambda0", "0.9", "--epochs", "1", "--dataset", "cremad",
]  # fmt: skip


@pytest.mark.parametrize("sampler", ["heuristic", "learned"])
def test_official_preset_drops_the_last_incomplete_batch(
    av_roots: dict[str, Path], tmp_path: Path, sampler: str
) -> None:
    argv = ["--root", str(av_roots["cremad"]), "--out", str(tmp_path), *TINY_AV]
    history = audio_video.main([*argv, "--sampler", sampler, "--preset", "official"])
    n = 6  # 3 classes x 2 training clips
    if sampler == "heuristic":  # the released pacing, at epoch + 1 = 1: int(N * lambda)
        n = int(n * min(1.0, math.sqrt((1 - 0.9**2) / 40 * 1 + 0.9**2)))
    assert history[0]["train_samples"] == n // 4 * 4 == 4  # of 6 (learned), 5 (heuristic)
    paper = audio_video.main([*argv, "--sampler", sampler, "--epochs", "1"])
    assert paper[0]["train_samples"] == (6 if sampler == "learned" else 5)  # nothing dropped


def test_augmented_scoring_view_draws_its_own_augmentations(av_roots: dict[str, Path]) -> None:
    argv = ["--root", str(av_roots["cremad"]), *TINY_AV]
    train, _, score = audio_video.load_data(audio_video.parse_args([*argv, "--preset", "official"]))
    assert score.train and score.seed == scoring_seed(train.seed) != train.seed
    assert not torch.equal(score[0]["visual"], train[0]["visual"])  # same epoch, other draw
    _, _, plain = audio_video.load_data(audio_video.parse_args(argv))
    assert not plain.train
