"""The detector's LightningModule: binary cross-entropy (positives weighted by the train split's
negative/positive ratio), random 90-degree rotations and flips drawn from (seed, epoch, batch),
AdamW with warmup + cosine, validation ROC AUC over the whole val split."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from ....models.detector import Detector
from ...config import TrainConfig
from ...guards import check_finite
from ...history import RunHistory
from ...metrics import roc_auc
from ...optim import adamw_warmup_cosine, decay_groups
from ...rng import step_seed

__all__ = ["DetectorModule", "augment"]


def augment(x: torch.Tensor, seed: int) -> torch.Tensor:
    """One of the 8 rotations/flips of the square patch per batch (a patch of sky has no up)."""
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(0, 4, (1,), generator=g))  # real-data-ok: picks a rotation of real pixels
    flip = bool(torch.randint(0, 2, (1,), generator=g))  # real-data-ok: picks a flip
    x = torch.rot90(x, k, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if flip else x


class DetectorModule(L.LightningModule):
    def __init__(self, model: Detector, cfg: TrainConfig, *, history: RunHistory, total_steps: int, pos_weight: float) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.history = history
        self.total_steps = total_steps
        self.register_buffer("pos_weight", torch.tensor(pos_weight, dtype=torch.float32), persistent=False)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x = batch["x"]
        if self.cfg.model.options.augment:
            x = augment(x, step_seed(self.cfg.trainer.seed, self.current_epoch, batch_idx))
        loss = self.model.loss(self.model(x), batch["y"], self.pos_weight)
        mean = check_finite(self, loss, "training loss", batch_idx)
        self.history.record_step(self, mean, batch_idx, int(x.shape[0]))
        return loss

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        return adamw_warmup_cosine(decay_groups(self.model.named_parameters(), o.weight_decay), o, self.total_steps)

    def on_validation_epoch_start(self) -> None:
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._loss = 0.0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.model(batch["x"])
        self._loss += float(self.model.loss(logits, batch["y"])) * len(logits)
        self._scores.append(logits.float().cpu().numpy())
        self._labels.append(batch["y"].cpu().numpy())

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._scores:
            return
        s, y = np.concatenate(self._scores), np.concatenate(self._labels)
        auc = roc_auc(s, y)
        val_loss = self._loss / max(1, len(s))
        self.log("val/loss", val_loss)
        self.log("val/auc", auc, prog_bar=True)
        self.history.record_epoch(self, val_loss=val_loss, val_auc=auc)
