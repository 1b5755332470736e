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


def _row(text: str, label: str) -> list[str]:
    """The cells after ``label`` in the markdown table row that starts with it, marks removed."""
    match = re.search(rf"^\| {re.escape(label)} \|(.*)\|$", text, re.MULTILINE)
    assert match, f"no table row {label!r}"
    return [cell.strip().strip("*`").replace("**", "") for cell in match.group(1).split("|")]


def test_concepts_tables_are_what_the_code_prints() -> None:
    # The worked example's tables are typed by hand: each cell is recomputed here.
    from bss_sampler.functional import balance_loss, min_max_normalize, prediction_similarity
    from bss_sampler.pacing import root_pacing

    text = (ROOT / "docs/concepts.md").read_text(encoding="utf-8")
    names = _concepts()
    _run("docs/concepts.md", names)
    unimodal = [names["audio"], names["video"]]
    similarity = prediction_similarity(unimodal)
    loss = balance_loss(names["multi"], unimodal, names["targets"], alpha=0.2)

    def fmt(values: Tensor) -> list[str]:
        return [f"{float(v):.3f}" for v in values]

    assert _row(text, "`prediction_similarity`") == fmt(similarity)
    assert _row(text, "`balance_loss` (alpha 0.2)") == fmt(loss)
    assert _row(text, "normalised similarity") == fmt(min_max_normalize(similarity))
    assert _row(text, "normalised loss") == fmt(min_max_normalize(loss))
    assert _row(text, "**balance score**") == fmt(names["scores"])
    assert _row(text, "`p` (Eq. 10)") == fmt(names["learned"].sampling_probabilities())

    def orders(sampler_type: type, epoch: int, **kwargs: Any) -> list[str]:
        columns = []
        for shard in ({}, {"num_replicas": 2, "rank": 0}, {"num_replicas": 2, "rank": 1}):
            sampler = sampler_type(range(6), **kwargs, **shard)
            sampler.set_scores(names["scores"])
            sampler.set_epoch(epoch)
            columns.append(", ".join(str(i) for i in sampler))
        return columns

    # The orders are torch's random draws: the page prints those of torch 2.13 (as 2.8 and later
    # draw; 2.1 to 2.6 draw other numbers, see "Across torch versions").
    draw = torch.empty(4).exponential_(generator=torch.Generator().manual_seed(0))
    if not torch.allclose(draw, torch.tensor([3.5083, 1.2304, 0.6150, 2.5351]), atol=1e-4):
        pytest.skip(f"torch {torch.__version__} draws other random numbers than torch 2.13")
    learned_type, heuristic_type = type(names["learned"]), type(names["heuristic"])
    learned_rows, heuristic_rows = text.split("### Order: learned", 1)[1].split("### Order: heur")
    for epoch in (0, 1):
        assert _row(learned_rows, str(epoch)) == orders(learned_type, epoch)
    for epoch in (0, 1, 2):
        lam, count, *columns = _row(heuristic_rows, str(epoch))
        assert lam == f"{root_pacing(epoch, lambda0=0.5, t_grow=2):.3f}"
        assert columns == orders(heuristic_type, epoch, lambda0=0.5, t_grow=2)
        assert int(count) == len(columns[0].split(", "))
