"""The README's training loop, run in-process, with a checkpoint after every step.

``train(..., stop_at=k)`` stops after step ``k`` as a crash would; ``train(..., resume=ckpt)``
starts a fresh model, optimiser and sampler from that checkpoint and re-enters the same loop.
``train(..., warmup=w)`` first trains epochs ``0 .. w - 1`` in random order without the sampler
(SMV's released warm-up), then enters the loop at epoch ``w`` with a sampler never iterated.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .conftest import PairDataset

Checkpoint = dict[str, Any]


def roundtrip(state: Any) -> Any:
    """What a fresh process reads back: ``torch.save`` then ``torch.load(weights_only=True)``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


class TinyModel(nn.Module):
    """Two linear encoders, a concat head and one head per modality (no BatchNorm: batches of 1)."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.enc_a, self.enc_v = nn.Linear(5, 8), nn.Linear(4, 8)
        self.head = nn.Linear(16, classes)
        self.head_a, self.head_v = nn.Linear(8, classes), nn.Linear(8, classes)

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, list[Tensor]]:
        za, zv = self.enc_a(a).relu(), self.enc_v(v).relu()
        return self.head(torch.cat([za, zv], 1)), [self.head_a(za), self.head_v(zv)]


def _loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    multimodal, unimodal = model(batch["a"], batch["v"])
    target = batch["target"]
    loss = F.cross_entropy(multimodal, target)
    for logits in unimodal:
        loss = loss + F.cross_entropy(logits, target)
    return loss


@dataclass
class Run:
    steps: list[tuple[int, list[int]]] = field(default_factory=list)  # (epoch, batch indices)
    updates: list[int] = field(default_factory=list)  # epochs before which scores were computed
    checkpoint: Checkpoint | None = None
    weights: dict[str, Tensor] = field(default_factory=dict)
    scores: Tensor | None = None


def train(
    cls: type,
    *,
    n: int,
    batch_size: int,
    workers: int,
    epochs: int,
    stop_at: int | None = None,
    resume: Checkpoint | None = None,
    warmup: int = 0,
    **schedule: Any,
) -> Run:
    torch.manual_seed(0)
    dataset = PairDataset(n=n)
    model = TinyModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if cls.__name__ == "HeuristicCurriculumSampler":
        schedule = {"lambda0": 0.5, "t_grow": 3, **schedule}
    sampler = cls(dataset, seed=7, **schedule)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    score_loader = DataLoader(dataset, batch_size=16)
    start_epoch, run = 0, Run()
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        sampler.load_state_dict(resume["sampler"])
        start_epoch = resume["epoch"]

    for epoch in range(start_epoch, warmup):  # a warm-up in random order (not checkpointed)
        shuffled = torch.Generator().manual_seed(epoch)
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=shuffled):
            optimizer.zero_grad()
            _loss(model, batch).backward()
            optimizer.step()

    for epoch in range(max(start_epoch, warmup), epochs):  # the README's loop
        if sampler.needs_update(epoch):
            sampler.update_scores(model, score_loader, progress=False)
            run.updates.append(epoch)
        sampler.set_epoch(epoch)
        consumed = 0
        for batch in loader:
            optimizer.zero_grad()
            _loss(model, batch).backward()
            optimizer.step()
            consumed += len(batch["target"])
            run.steps.append((epoch, batch["index"].tolist()))
            run.checkpoint = roundtrip(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "sampler": sampler.state_dict(consumed=consumed),
                }
            )
            if len(run.steps) == stop_at:
                return run
    run.weights = {k: v.clone() for k, v in model.state_dict().items()}
    run.scores = sampler.scores
    return run
