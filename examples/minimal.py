"""BSS in one file: Algorithm 1 of the paper on a tiny two-modality task, resumable at any step.

Copy it and replace the dataset and the model with yours. Run::

    python examples/minimal.py                        # one process, CPU, a few seconds
    torchrun --standalone --nproc-per-node 2 examples/minimal.py
    python examples/minimal.py --stop-at 30           # "crash" after step 30 ...
    python examples/minimal.py --resume               # ... and continue exactly from there

The model returns ``(multimodal_logits, [audio_logits, video_logits])`` and batches are
``(audio, video, target)``: the conventions ``update_scores`` reads without a custom forward.
"""

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.nn.functional  # before init_process_group (see the end)
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from bss_sampler import LearnedBalanceSampler

parser = argparse.ArgumentParser(
    description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers")
parser.add_argument("--update-every", type=int, default=5, help="E: re-score every E epochs")
parser.add_argument("--checkpoint", type=Path, default=Path("runs/minimal/checkpoint.pt"))
parser.add_argument("--stop-at", type=int, default=None, help="stop after this step")
parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
args = parser.parse_args()

# -- distributed set-up (a no-op without torchrun) -------------------------------------------------
distributed = "RANK" in os.environ
if distributed:
    dist.init_process_group("gloo")  # "nccl" on GPUs
rank = dist.get_rank() if distributed else 0
torch.manual_seed(0)

# -- data: audio always carries the class, video only for some samples (imbalanced ones) ---------
N, CLASSES, DIM = 1024, 4, 16
g = torch.Generator().manual_seed(0)
targets = torch.arange(N) % CLASSES
strength = torch.rand(N, 1, generator=g)  # how much the video shows the class
audio = torch.randn(CLASSES, DIM, generator=g)[targets] + 3 * torch.randn(N, DIM, generator=g)
video = strength * torch.randn(CLASSES, DIM, generator=g)[targets] + torch.randn(
    N, DIM, generator=g
)
train_set = TensorDataset(audio, video, targets)


class LateFusion(nn.Module):
    """One encoder and one head per modality, plus a head on the concatenated features."""

    def __init__(self) -> None:
        super().__init__()
        self.enc_a = nn.Sequential(nn.Linear(DIM, 32), nn.ReLU())
        self.enc_v = nn.Sequential(nn.Linear(DIM, 32), nn.ReLU())
        self.head, self.head_a, self.head_v = (
            nn.Linear(64, CLASSES),
            nn.Linear(32, CLASSES),
            nn.Linear(32, CLASSES),
        )

    def forward(self, a: Tensor, v: Tensor) -> tuple[Tensor, list[Tensor]]:
        za, zv = self.enc_a(a), self.enc_v(v)
        return self.head(torch.cat([za, zv], 1)), [self.head_a(za), self.head_v(zv)]


model = LateFusion()
train_model = DistributedDataParallel(model) if distributed else model
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

# -- BSS: the sampler orders the epochs, the scoring pass feeds it (Algorithm 1) ------------------
sampler = LearnedBalanceSampler(train_set, update_every=args.update_every)  # shards under torchrun
loader = DataLoader(
    train_set, batch_size=args.batch_size, sampler=sampler, num_workers=args.num_workers
)
score_loader = DataLoader(  # unshuffled: each rank scores its share, update_scores syncs
    train_set,
    batch_size=256,
    sampler=DistributedSampler(train_set, shuffle=False) if distributed else None,
)

start_epoch, step = 0, 0
checkpoint_file = args.checkpoint.with_name(f"{args.checkpoint.stem}-rank{rank}.pt")
if args.resume:
    state = torch.load(checkpoint_file, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    sampler.load_state_dict(state["sampler"])
    start_epoch, step = state["epoch"], state["step"]

for epoch in range(start_epoch, args.epochs):
    if sampler.needs_update(epoch):  # before epoch 0, then every E epochs; once per epoch
        scores = sampler.update_scores(model, score_loader, progress=False)
        if rank == 0:
            print(f"epoch {epoch}: scores mean {scores.mean():+.3f}, min {scores.min():+.3f}")
    sampler.set_epoch(epoch)  # a resumed epoch keeps its position
    consumed, correct, seen = 0, 0, 0
    for a, v, y in loader:
        multimodal, unimodal = train_model(a, v)
        loss = F.cross_entropy(multimodal, y)  # Eq. 5's heads: fused + each modality
        loss = loss + F.cross_entropy(unimodal[0], y) + F.cross_entropy(unimodal[1], y)
        optimizer.zero_grad()
        torch.autograd.backward(loss)  # = loss.backward(), which mypy sees untyped
        optimizer.step()
        step += 1
        consumed += len(y)  # what the loop trained on (workers have read further ahead)
        correct += int((multimodal.argmax(1) == y).sum())
        seen += len(y)
        checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "sampler": sampler.state_dict(consumed=consumed),
                "epoch": epoch,
                "step": step,
            },
            checkpoint_file,
        )
        if step == args.stop_at:
            raise SystemExit(f"rank {rank}: stopped after step {step}; rerun with --resume")
    if rank == 0:
        print(f"epoch {epoch}: train accuracy {correct / max(seen, 1):.3f} ({seen} samples)")

if rank == 0:
    torch.save(model.state_dict(), args.checkpoint.with_name("final-model.pt"))
if distributed:  # free gloo's threads before exit, or they may abort it (SIGABRT)
    dist.barrier()
    del train_model
    gc.collect()
    dist.destroy_process_group()
