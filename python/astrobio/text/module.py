"""The LightningModule of the LoRA text classifier: cross-entropy (optionally class-weighted and
label-smoothed), AdamW on the trainable parameters only (LoRA matrices at `lr`, the new head at
`head_lr`: a freshly initialized head needs a larger step than adapters that start at zero),
linear warmup + cosine decay stepped per optimizer step (`astrobio.train.module.warmup_cosine`,
the datacube module's schedule), and validation accuracy / macro-F1 from a confusion matrix
summed exactly over DDP ranks.

Logged: train/loss (per step), lr, val/loss, val/acc, val/f1 (macro). `history` keeps one dict
per epoch (train_loss, val_loss, val_acc, val_f1, lr).
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from ..models.language import EncoderClassifier
from ..train.module import warmup_cosine
from .metrics import metrics_from_confusion

__all__ = ["KeepBestTrainable", "LanguageModule"]

log = logging.getLogger(__name__)


class LanguageModule(L.LightningModule):
    """Trains `model` (an `EncoderClassifier`). `total_steps` (optimizer steps of the run) sizes
    the schedule; None: Lightning's estimate at fit time. `class_weights` [K]: the CE weights
    (None: unweighted)."""

    def __init__(self, model: EncoderClassifier, *, lr: float = 1e-3, head_lr: float = 3e-3, weight_decay: float = 0.01,
                 warmup_fraction: float = 0.06, min_lr_ratio: float = 0.05, label_smoothing: float = 0.0,
                 class_weights: torch.Tensor | None = None, total_steps: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.num_classes = int(model.head.out_features)
        self.lr, self.head_lr, self.weight_decay = lr, head_lr, weight_decay
        self.warmup_fraction, self.min_lr_ratio = warmup_fraction, min_lr_ratio
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", None if class_weights is None else class_weights.float(), persistent=False)
        self.total_steps = total_steps
        self.history: list[dict[str, Any]] = []
        self._train_losses: list[float] = []
        self._val_conf: torch.Tensor | None = None
        self._val_loss: torch.Tensor | None = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, weight=self.class_weights, label_smoothing=self.label_smoothing,
                               reduction=reduction)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = self._loss(logits, batch["labels"])
        bs = int(batch["labels"].shape[0])
        self._train_losses.append(float(loss.detach()))
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, batch_size=bs)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=bs)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_conf = torch.zeros(self.num_classes * self.num_classes, dtype=torch.float64, device=self.device)
        self._val_loss = torch.zeros(2, dtype=torch.float64, device=self.device)  # (sum of losses, count)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        assert self._val_conf is not None and self._val_loss is not None
        logits = self(batch["input_ids"], batch["attention_mask"])
        labels = batch["labels"]
        pred = logits.argmax(-1)
        self._val_conf += torch.bincount(labels * self.num_classes + pred, minlength=self.num_classes ** 2).double()
        # unweighted CE for the logged val/loss, so it is comparable across class-weight settings
        self._val_loss += torch.stack([F.cross_entropy(logits.float(), labels, reduction="sum").double(),
                                       torch.tensor(float(labels.numel()), dtype=torch.float64, device=self.device)])

    def on_validation_epoch_end(self) -> None:
        assert self._val_conf is not None and self._val_loss is not None
        conf, loss = self._val_conf, self._val_loss
        if self.trainer.world_size > 1:
            conf = self.trainer.strategy.reduce(conf, reduce_op="sum")
            loss = self.trainer.strategy.reduce(loss, reduce_op="sum")
        m = metrics_from_confusion(conf.reshape(self.num_classes, self.num_classes).cpu().numpy())
        val_loss = float(loss[0] / loss[1].clamp(min=1))
        # identical on every rank already (exact sums), so sync_dist only averages equal values
        self.log("val/loss", val_loss, sync_dist=True)
        self.log("val/acc", m["accuracy"], prog_bar=True, sync_dist=True)
        self.log("val/f1", m["macro_f1"], prog_bar=True, sync_dist=True)
        if self.trainer.sanity_checking:
            return
        train = self._train_losses
        self.history.append({"epoch": self.current_epoch + 1, "step": int(self.global_step),
                             "train_loss": sum(train) / len(train) if train else float("nan"), "val_loss": val_loss,
                             "val_acc": m["accuracy"], "val_f1": m["macro_f1"],
                             "lr": float(self.trainer.optimizers[0].param_groups[0]["lr"])})
        self._train_losses = []
        h = self.history[-1]
        log.info("epoch %d (step %d): train loss %.4f, val loss %.4f, val acc %.4f, val macro-F1 %.4f", h["epoch"], h["step"],
                 h["train_loss"], h["val_loss"], h["val_acc"], h["val_f1"])

    def configure_optimizers(self) -> Any:
        lora = [p for p in self.model.encoder.parameters() if p.requires_grad]
        head_w, head_b = self.model.head.weight, self.model.head.bias
        groups = [{"params": lora, "lr": self.lr, "weight_decay": self.weight_decay},
                  {"params": [head_w], "lr": self.head_lr, "weight_decay": self.weight_decay},
                  {"params": [head_b], "lr": self.head_lr, "weight_decay": 0.0}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]])
        total = int(self.total_steps or self.trainer.estimated_stepping_batches)
        total = max(1, total)
        warmup = int(round(self.warmup_fraction * total))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(warmup_cosine, warmup=max(1, warmup), total=total,
                                                               floor=self.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


class KeepBestTrainable(L.Callback):
    """Copies the trainable tensors (LoRA + head, ~80k values) at each new best val/f1;
    `restore(model)` puts them back after fit. Cheaper than checkpointing the frozen 22M-parameter
    encoder, and enough because only these tensors change."""

    def __init__(self, monitor: str = "val/f1") -> None:
        self.monitor = monitor
        self.best: float = -math.inf
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = float(trainer.callback_metrics.get(self.monitor, float("nan")))
        if math.isfinite(value) and value > self.best:
            self.best, self.best_epoch = value, trainer.current_epoch + 1
            self.state = {k: v.detach().clone() for k, v in pl_module.model.named_parameters() if v.requires_grad}

    def restore(self, model: EncoderClassifier) -> None:
        """Load the best trainable tensors into `model` (no-op before any validation)."""
        if self.state is not None:
            params = dict(model.named_parameters())
            with torch.no_grad():
                for k, v in self.state.items():
                    params[k].copy_(v)
