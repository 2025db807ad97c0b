"""The optimizer and learning-rate schedule every model trains with: AdamW over the groups a
task chooses, linear warmup then cosine decay, stepped per optimizer step."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial
from typing import Any

import torch
from torch import nn

from .config import OptimConfig, TrainConfig

__all__ = ["warmup_cosine", "optimizer_steps", "decay_groups", "adamw_warmup_cosine"]


def warmup_cosine(step: int, *, warmup: int, total: int, floor: float) -> float:
    """LR multiplier: linear warmup over `warmup` steps, then cosine from 1 to `floor` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def optimizer_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    """Optimizer steps of the whole run (per rank: every rank steps together). Computed from the
    config, not Lightning's `estimated_stepping_batches`, which would load the train loader
    before a checkpoint's loader state is restored (a resumed run would replay the epoch)."""
    return -(-batches_per_epoch // cfg.optim.accumulate) * cfg.trainer.max_epochs


def decay_groups(named: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: weight decay on conv/linear weights only; not on biases, norms or
    learned volumes. Frozen parameters are left out."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in named:
        if p.requires_grad:
            (decay if p.ndim >= 2 and name.endswith(".weight") else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw_warmup_cosine(groups: list[dict[str, Any]], optim: OptimConfig, total_steps: int, *,
                        min_warmup: int = 0) -> dict[str, Any]:
    """Lightning's `configure_optimizers` answer: AdamW over `groups` (a group without its own
    `lr` uses `optim.lr`) and the warmup + cosine schedule over `total_steps` (warmup
    `optim.warmup_fraction` of them, at least `min_warmup`), stepped per optimizer step."""
    opt = torch.optim.AdamW(groups, lr=optim.lr)
    total = max(1, int(total_steps))
    warmup = max(min_warmup, int(round(optim.warmup_fraction * total)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(warmup_cosine, warmup=warmup, total=total, floor=optim.min_lr_ratio))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
