"""Seeded epoch orders and distributed sharding, as pure functions.

* `shuffled_prefix`: the heuristic scheduler's epoch (Eq. 8): the first ``count`` entries of
  a ranking, in a uniformly random order.
* `weighted_permutation`: the learned scheduler's epoch (Eq. 10-11): a permutation of all
  items drawn without replacement with probabilities ``softmax(logits)`` (a Plackett-Luce draw).
  It uses exponential keys (Efraimidis-Spirakis, equivalently Gumbel-top-k) and one sort, so it
  has no ``torch.multinomial`` limit of 2^24 categories and costs ``O(N log N)``.
* `shard`: the share of one rank, exactly as ``torch.utils.data.DistributedSampler`` cuts it.

Every function takes an explicit CPU ``torch.Generator``; none touches the global RNG. Given the
same inputs and generator state, every process computes the same order, which is what lets ranks
agree without communicating.

>>> import torch
>>> g = epoch_generator(seed=0, epoch=0)
>>> sorted(weighted_permutation(torch.zeros(5), g).tolist())
[0, 1, 2, 3, 4]
>>> shard(torch.arange(5), num_replicas=2, rank=1, drop_last=False).tolist()
[1, 3, 0]
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "epoch_generator",
    "ranking",
    "shard",
    "shard_size",
    "shuffled_prefix",
    "weighted_permutation",
]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch)`` through a SplitMix64 hash.

    Distinct pairs give unrelated streams (unlike ``seed + epoch``, where ``(0, 1)`` and
    ``(1, 0)`` coincide); every bit of both reaches the 32-bit seed of the CPU generator.
    """
    return torch.Generator().manual_seed(_splitmix64(_splitmix64(seed & _MASK64) + epoch))


def shuffled_prefix(ranking: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """The first ``count`` entries of ``ranking`` in a uniformly random order (Eq. 8).

    Args:
        ranking: int64 tensor ``(N,)``, the samples from most to least preferred.
        count: how many of the leading samples this epoch uses, ``1 <= count <= N``.
        generator: CPU generator; consumed by one ``randperm(count)``.
    """
    return ranking[:count][torch.randperm(count, generator=generator)]


def weighted_permutation(
    logits: Tensor, generator: torch.Generator, *, temperature: float = 1.0
) -> Tensor:
    """A permutation of ``range(N)`` drawn without replacement with ``p = softmax(logits / T)``.

    The first item is ``i`` with probability ``p_i``; each next item is drawn from the remaining
    ones with renormalised probabilities (Eq. 11 with Eq. 10). Implementation: ``i`` is ranked by
    the key ``log(E_i) - logits_i / T`` with ``E_i ~ Exp(1)``, ascending; ``-log(E_i)`` is a
    standard Gumbel variable, so this is the Gumbel-top-k trick taken to ``k = N``. The keys are
    scaled by ``T`` (``T log(E_i) - logits_i``), which leaves their order unchanged and saves a
    copy of ``logits / T``: the extra memory is 16 bytes per item (keys, sorted keys, indices).

    Args:
        logits: float tensor ``(N,)`` of finite log-weights (scores for softmax probabilities,
            ``log w`` for weights ``w``).
        generator: CPU generator; consumed by ``N`` exponential draws.
        temperature: ``T > 0``.

    Returns:
        int64 tensor ``(N,)``.
    """
    keys = torch.empty(logits.shape, dtype=torch.float32).exponential_(generator=generator)
    keys.log_()
    if temperature != 1.0:
        keys.mul_(temperature)
    keys.sub_(logits)
    return _argsort_inplace(keys)


_SLICE = 1 << 20


def _argsort_inplace(keys: Tensor) -> Tensor:
    """Stable ascending argsort of finite-or-infinite float32 ``keys``, overwriting them.

    The keys are sorted as int32 with the same order (negative floats get their magnitude bits
    flipped, slice by slice to bound the temporary): the integer radix sort takes about half the
    time of a float sort.
    """
    keys.add_(0.0)  # -0.0 becomes +0.0, so that equal floats are equal integers
    bits = keys.view(torch.int32)
    for start in range(0, bits.numel(), _SLICE):
        part = bits[start : start + _SLICE]
        part.bitwise_xor_((part >> 31) & 0x7FFFFFFF)
    return torch.sort(bits, stable=True).indices


def ranking(scores: Tensor, descending: bool) -> Tensor:
    """Indices of ``scores`` sorted (stably: ties keep the lower index first).

    Args:
        scores: finite float tensor ``(N,)``.
        descending: highest score first (the heuristic scheduler's ``X_rank``, Eq. 8).
    """
    keys = scores.to(torch.float32, copy=True)
    if descending:
        keys.neg_()
    return _argsort_inplace(keys)


def shard_size(total: int, num_replicas: int, drop_last: bool) -> int:
    """How many indices each rank gets from an epoch of ``total``, as in ``DistributedSampler``."""
    if drop_last:
        return total // num_replicas
    return -(-total // num_replicas)


def shard(order: Tensor, num_replicas: int, rank: int, drop_last: bool) -> Tensor:
    """The share of ``rank`` in the global ``order``, exactly as ``DistributedSampler`` cuts it.

    Without ``drop_last`` the order is padded by repeating its beginning to a multiple of
    ``num_replicas``; with it, the tail is trimmed. Rank ``r`` then takes every
    ``num_replicas``-th index starting at ``r``. The shares of all ranks are disjoint (apart from
    the padding) and cover the epoch.
    """
    per_rank = shard_size(len(order), num_replicas, drop_last)
    total = per_rank * num_replicas
    if total > len(order):
        repeats = -(-total // len(order))
        order = order.repeat(repeats)
    return order[rank:total:num_replicas]
