"""The fusion model's LightningModule (every head trained together: the mean over heads of the
MSE on standardized targets) and the initialization of an encoder from another run."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from ....errors import ConfigError
from ....models.multimodal import FusionModel
from ...checkpoint import load_checkpoint
from ...config import TrainConfig
from ...guards import check_finite
from ...history import RunHistory
from ...optim import adamw_warmup_cosine, decay_groups
from ...rng import seeded_rng, step_seed

__all__ = ["FusionModule", "init_from"]


class FusionModule(L.LightningModule):
    """Trains every head of a `FusionModel`; validation RMSE (standardized targets) per head,
    summed exactly across ranks; the monitored `val/rmse` is the last head's (fusion)."""

    def __init__(self, model: FusionModel, cfg: TrainConfig, *, history: RunHistory, total_steps: int) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.history = history
        self.total_steps = total_steps

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # dropout drawn from (seed, step): a resumed run repeats it exactly
        with seeded_rng(step_seed(self.cfg.trainer.seed, self.current_epoch, batch_idx)):
            preds = self.model(batch["params"], batch["cube"])
        losses = {k: F.mse_loss(p.float(), batch["y"]) for k, p in preds.items()}
        loss = torch.stack(list(losses.values())).mean()
        mean = check_finite(self, loss, "training loss", batch_idx)
        bs = int(batch["y"].shape[0])
        self.history.record_step(self, mean, batch_idx, bs)
        self.log_dict({f"train/mse_{k}": v.detach() for k, v in losses.items()}, on_step=True, on_epoch=False, batch_size=bs)
        return loss

    def configure_optimizers(self) -> Any:
        return adamw_warmup_cosine(decay_groups(self.model.named_parameters(), self.cfg.optim.weight_decay),
                                   self.cfg.optim, self.total_steps)

    def on_validation_epoch_start(self) -> None:
        self._sse = torch.zeros(len(self.model.heads), dtype=torch.float64, device=self.device)
        self._n = torch.zeros((), dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        preds = self.model(batch["params"], batch["cube"])
        for i, head in enumerate(self.model.heads):
            self._sse[i] += ((preds[head].double() - batch["y"].double()) ** 2).sum()
        self._n += float(batch["y"].numel())

    def on_validation_epoch_end(self) -> None:
        sse, n = self._sse, self._n
        if self.trainer.world_size > 1:
            sse = self.trainer.strategy.reduce(sse, reduce_op="sum")
            n = self.trainer.strategy.reduce(n, reduce_op="sum")
        rmse = (sse / n.clamp(min=1.0)).sqrt()
        if self.trainer.sanity_checking:
            return
        check_finite(self, rmse[-1], "validation RMSE")
        self.log("val/rmse", rmse[-1].float(), prog_bar=True, sync_dist=True)
        for head, r in zip(self.model.heads, rmse.tolist()):
            self.log(f"val/rmse_{head}", r, sync_dist=True)
        self.history.record_epoch(self, val_loss=float(rmse[-1]) ** 2, val_rmse=float(rmse[-1]),
                           val_rmse_by_head=dict(zip(self.model.heads, rmse.tolist())))


def init_from(model: torch.nn.Module, path: str, modality: str) -> None:
    """Copy the `modality` encoder and head weights of another run's checkpoint into `model`."""
    state = load_checkpoint(path)["state_dict"]
    prefixes = (f"model.{modality}_encoder.", f"model.head_{modality}.")
    picked = {k.removeprefix("model."): v for k, v in state.items() if k.startswith(prefixes)}
    if not picked:
        raise ConfigError(f"{path} has no {modality} encoder (was it trained with --model multimodal and modality {modality}?)")
    own = model.state_dict()
    wrong = [k for k, v in picked.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ConfigError(f"{path}: the {modality} encoder does not fit this model ({wrong[0]}); use the same model options")
    model.load_state_dict(picked, strict=False)
