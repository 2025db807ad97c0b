"""The LoRA text classifier's LightningModule: cross-entropy (optionally class-weighted and
label-smoothed), AdamW on the trainable parameters only (LoRA matrices at `optim.lr`, the new
head at `head_lr`), validation accuracy / macro-F1 from a confusion matrix summed exactly over
ranks. Its checkpoints hold only the trainable tensors (LoRA matrices and head; the frozen
22M-parameter encoder is the shipped file), so a checkpoint is ~1 MB."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F

from ....errors import IntegrityError
from ....models.language import EncoderClassifier
from ...config import TrainConfig
from ...guards import check_finite
from ...history import RunHistory
from ...metrics import metrics_from_confusion
from ...optim import adamw_warmup_cosine
from ...rng import seeded_rng, step_seed

__all__ = ["LanguageModule"]


class LanguageModule(L.LightningModule):
    """Trains an `EncoderClassifier` (LoRA + head); `class_weights` [K] or None."""

    def __init__(self, model: EncoderClassifier, cfg: TrainConfig, *, history: RunHistory, total_steps: int,
                 class_weights: torch.Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.history = history
        self.total_steps = total_steps
        self.num_classes = int(model.head.out_features)
        self.register_buffer("class_weights", None if class_weights is None else class_weights.float(), persistent=False)
        self.strict_loading = False  # checkpoints hold the trainable tensors only

    # ---------------------------------------------------------------- checkpoints: trainable tensors only
    def _trainable_keys(self, prefix: str = "") -> set[str]:
        return {f"{prefix}model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:  # type: ignore[override]
        full = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        keep = self._trainable_keys(prefix)
        return OrderedDict((k, v) for k, v in full.items() if k in keep)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        """Exactly the trainable tensors (IntegrityError otherwise); the frozen encoder stays."""
        own = self._trainable_keys()
        if set(state_dict) != own:
            raise IntegrityError(f"the checkpoint's trainable tensors do not match the model ({len(state_dict)} vs {len(own)})")
        return super().load_state_dict(state_dict, strict=False, assign=assign)

    # ---------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # dropout (encoder, LoRA, head) drawn from (seed, epoch, batch): exact on resume
        with seeded_rng(step_seed(self.cfg.trainer.seed, self.current_epoch, batch_idx)):
            logits = self.model(batch["input_ids"], batch["attention_mask"])
        o = self.cfg.model.options
        weight = cast("torch.Tensor | None", self.class_weights)
        loss = F.cross_entropy(logits.float(), batch["labels"], weight=weight, label_smoothing=o.label_smoothing)
        mean = check_finite(self, loss, "training loss", batch_idx)
        self.history.record_step(self, mean, batch_idx, int(batch["labels"].shape[0]))
        return loss

    def configure_optimizers(self) -> Any:
        """AdamW: LoRA matrices at optim.lr, the new head at model.options.head_lr (a fresh head
        needs a larger step than adapters starting at zero); warmup (at least one step) + cosine."""
        o, lang = self.cfg.optim, self.cfg.model.options
        lora = [p for p in self.model.encoder.parameters() if p.requires_grad]
        groups = [{"params": lora, "lr": o.lr, "weight_decay": o.weight_decay},
                  {"params": [self.model.head.weight], "lr": lang.head_lr, "weight_decay": o.weight_decay},
                  {"params": [self.model.head.bias], "lr": lang.head_lr, "weight_decay": 0.0}]
        return adamw_warmup_cosine([g for g in groups if g["params"]], o, self.total_steps, min_warmup=1)

    # ---------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._conf = torch.zeros(self.num_classes ** 2, dtype=torch.float64, device=self.device)
        self._loss = torch.zeros(2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.model(batch["input_ids"], batch["attention_mask"])
        labels = batch["labels"]
        self._conf += torch.bincount(labels * self.num_classes + logits.argmax(-1), minlength=self.num_classes ** 2).double()
        # unweighted CE for the logged val/loss, so it is comparable across class-weight settings
        self._loss += torch.stack([F.cross_entropy(logits.float(), labels, reduction="sum").double(),
                                   torch.tensor(float(labels.numel()), dtype=torch.float64, device=self.device)])

    def on_validation_epoch_end(self) -> None:
        conf, loss = self._conf, self._loss
        if self.trainer.world_size > 1:
            conf = self.trainer.strategy.reduce(conf, reduce_op="sum")
            loss = self.trainer.strategy.reduce(loss, reduce_op="sum")
        if self.trainer.sanity_checking:
            return
        m = metrics_from_confusion(conf.reshape(self.num_classes, self.num_classes).cpu().numpy())
        val_loss = check_finite(self, loss[0] / loss[1].clamp(min=1), "validation loss")
        self.log("val/loss", float(val_loss), sync_dist=True)
        self.log("val/acc", m["accuracy"], sync_dist=True)
        self.log("val/f1", m["macro_f1"], prog_bar=True, sync_dist=True)
        self.history.record_epoch(self, val_loss=float(val_loss), val_acc=m["accuracy"], val_f1=m["macro_f1"])
