"""Per-step random draws that a resumed run repeats exactly."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import torch

__all__ = ["seeded_rng", "step_seed", "epoch_seed"]


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """torch's (CPU) and Python's global generators seeded for a block, restored afterwards.

    A training step that draws its noise (dropout, posterior samples, negative pairs) inside
    `seeded_rng(step_seed(seed, epoch, batch_idx))` depends on nothing drawn before it, so a run resumed from
    a checkpoint repeats it exactly without saving generator states. (CUDA generators are not
    forked: on GPU the draws stay seeded by `--seed` but are not replayed exactly on resume.)
    """
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


def step_seed(seed: int, epoch: int, batch_idx: int) -> int:
    """A per-batch seed from the run's seed and the batch's position (epoch, index in the epoch),
    which a resumed run reproduces (also with gradient accumulation)."""
    return (seed * 1_000_003 + epoch * 1_000_033 + batch_idx) % (2**63)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's shuffle order: from (seed, epoch) only, so a resumed run draws the
    same order as an uninterrupted one."""
    return seed * 1_000_003 + epoch
