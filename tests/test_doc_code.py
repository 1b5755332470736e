"""The code in the README and the docs runs: every Python block, with a tiny model and data set.

The blocks of one page run in order in one namespace, seeded with what the page's prose
assumes (`train_set`, `model`, `optimizer`, ...; `NAMESPACES`). A block that does not run on its
own (a sketch of a framework recipe) is preceded by `<!-- not run: ... PATH ... -->` naming the
runnable, tested file it sketches; the test checks that file exists.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")),
]
BLOCK = re.compile(r"(?:<!-- not run: (?P<skip>.*?) -->\n)?```python\n(?P<code>.*?)```", re.DOTALL)


class AVModel(nn.Module):
    """Late fusion of an audio (5 features) and a video (4 features) encoder, 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.enc_a, self.enc_v = nn.Linear(5, 8), nn.Linear(4, 8)
        self.head, self.head_a, self.head_v = nn.Linear(16, 3), nn.Linear(8, 3), nn.Linear(8, 3)

    def forward(self, audio: Tensor, video: Tensor) -> tuple[Tensor, list[Tensor]]:
        za, zv = self.enc_a(audio).relu(), self.enc_v(video).relu()
        return self.head(torch.cat([za, zv], 1)), [self.head_a(za), self.head_v(zv)]


class AVSet(Dataset[Any]):
    """24 random samples: `(audio, video, y)` tuples, or mappings with `index` (`mapping=True`)."""

    def __init__(self, *, mapping: bool) -> None:
        g = torch.Generator().manual_seed(0)
        self.audio, self.video = torch.randn(24, 5, generator=g), torch.randn(24, 4, generator=g)
        self.y, self.mapping = torch.randint(0, 3, (24,), generator=g), mapping

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Any:
        if self.mapping:
            return {"audio": self.audio[i], "video": self.video[i], "target": self.y[i], "index": i}
        return self.audio[i], self.video[i], self.y[i]


def criterion(multi: Tensor, unis: list[Tensor], target: Tensor) -> Tensor:
    return F.cross_entropy(multi, target) + sum(F.cross_entropy(u, target) for u in unis)


def _training(*, mapping: bool) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    from bss_sampler import LearnedBalanceSampler

    torch.manual_seed(0)
    train_set, model = AVSet(mapping=mapping), AVModel()
    sampler = LearnedBalanceSampler(train_set, seed=0)
    return {
        "train_set": train_set,
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "criterion": criterion,
        "epochs": 3,
        "T": 3,
        "save_every": 2,
        "resuming": False,
        "sampler": sampler,
        "score_loader": DataLoader(train_set, batch_size=8),
        "loader": DataLoader(train_set, batch_size=8, sampler=sampler),
    }


def _concepts() -> dict[str, Any]:
    names = _training(mapping=False)
    names["sampler"].set_scores(torch.zeros(len(names["train_set"])))
    names["sampler"].set_epoch(0)
    return names


class MaskedAVModel(nn.Module):
    """SMV's model contract: encoders, then a fusion of (possibly zeroed) features."""

    def __init__(self) -> None:
        super().__init__()
        self.audio_encoder, self.video_encoder = nn.Linear(5, 8), nn.Linear(4, 8)
        self.head = nn.Linear(16, 3)

    def fuse(self, features: list[Tensor]) -> Tensor:
        return self.head(torch.cat(features, 1))


def _smv() -> dict[str, Any]:
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    train_set = AVSet(mapping=False)
    return {
        "train_set": train_set,
        "model": MaskedAVModel(),
        "criterion": F.cross_entropy,
        "epochs": 2,
        "value_loader": DataLoader(train_set, batch_size=8),
    }


# What each page's prose assumes; a page missing here gets `_training(mapping=False)`.
NAMESPACES: dict[str, Callable[[], dict[str, Any]]] = {
    "docs/concepts.md": _concepts,
    "docs/online-scoring.md": lambda: _training(mapping=True),
    "docs/smv.md": _smv,
}


def _blocks(page: str) -> list[tuple[str | None, str]]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return [(m.group("skip"), m.group("code")) for m in BLOCK.finditer(text)]


def _run(page: str, names: dict[str, Any]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, (skip, code) in enumerate(_blocks(page)):
            if skip is None:
                exec(compile(code, f"{page} python block {i + 1}", "exec"), names)
    return out.getvalue()


# A number a page quotes from its code's output, and the line that output must hold.
PRINTED = {"docs/imbalance.md": r"^tensor\(0\.698\d*\)$"}  # "# 0.698 for seed 0"
RUN_PAGES = [page for page in PAGES if any(skip is None for skip, _ in _blocks(page))]


@pytest.mark.parametrize("page", RUN_PAGES)
def test_page_code_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "from examples" in (ROOT / page).read_text(encoding="utf-8"):
        if importlib.util.find_spec("examples") is None:
            pytest.skip("imports examples/, which only a checkout has (not the installed wheel)")
        pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)  # checkpoints land here
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the imbalance page trains 60 epochs: no spinning threads
    try:
        printed = _run(page, NAMESPACES.get(page, lambda: _training(mapping=False))())
    finally:
        torch.set_num_threads(threads)
    if page in PRINTED:
        assert re.search(PRINTED[page], printed, re.MULTILINE), printed


def test_readme_loop_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first run saves at steps 0 and 2 of each epoch; the second takes the `resuming` branch.
    monkeypatch.chdir(tmp_path)
    first = _training(mapping=False)
    _run("README.md", first)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == first["epochs"] - 1
    resumed = {**_training(mapping=False), "resuming": True}
    _run("README.md", resumed)
    assert resumed["start_epoch"] == checkpoint["epoch"]
    assert torch.equal(resumed["sampler"].scores, first["sampler"].scores)


@pytest.mark.parametrize("page", PAGES)
def test_a_block_not_run_names_the_tested_file_it_sketches(page: str) -> None:
    for skip, _ in _blocks(page):
        if skip is not None:
            paths = re.findall(r"`([\w./-]+\.py)`", skip)
            assert paths, f"{page}: a block not run names no file: {skip!r}"
            for path in paths:
                assert (ROOT / path).is_file(), f"{page}: {path} does not exist"
