"""The run history (per-step training loss, one record per epoch) that every model's
LightningModule records into, that travels in every checkpoint and that the plots draw."""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import torch

__all__ = ["RunHistory"]


class RunHistory:
    """steps: [epoch, batch_idx, global_step, loss averaged over ranks] per training batch;
    epochs: one dict per epoch (epoch, step, train_loss, the task's validation values, lr).
    The mean over ranks is identical on every rank, so a resumed rank's history is its own."""

    def __init__(self) -> None:
        self.steps: list[list[Any]] = []
        self.epochs: list[dict[str, Any]] = []

    def record_step(self, module: L.LightningModule, mean_loss: torch.Tensor, batch_idx: int, batch_size: int) -> None:
        """Record (and log) one training batch's loss; call from `training_step`."""
        self.steps.append([module.current_epoch, batch_idx, module.global_step, float(mean_loss)])
        module.log("train/loss", mean_loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        module.log("lr", module.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=batch_size)

    def record_epoch(self, module: L.LightningModule, **values: Any) -> None:
        """Record one epoch's validation `values`; call from `on_validation_epoch_end`."""
        losses = [s[3] for s in self.steps if s[0] == module.current_epoch]
        self.epochs.append({"epoch": module.current_epoch + 1, "step": int(module.global_step),
                            "train_loss": sum(losses) / len(losses) if losses else float("nan"), **values,
                            "lr": float(module.trainer.optimizers[0].param_groups[0]["lr"])})

    def to_dict(self) -> dict[str, list[Any]]:
        """A deep copy as plain values: {"steps": [...], "epochs": [...]}."""
        return copy.deepcopy({"steps": self.steps, "epochs": self.epochs})

    def load(self, saved: dict[str, list[Any]]) -> None:
        """Replace the contents with a checkpoint's history (in place: modules hold this object)."""
        saved = copy.deepcopy(saved)
        self.steps[:] = saved["steps"]
        self.epochs[:] = saved["epochs"]
