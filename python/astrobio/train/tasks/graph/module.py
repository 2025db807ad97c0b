"""The graph VAE's LightningModule: reconstruction BCE + annealed KL on the train edges with fresh
non-edges per step, validation AUC/AP pooled over the networks."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ....models.graph import GraphVAE
from ...config import TrainConfig
from ...guards import check_finite
from ...history import RunHistory
from ...metrics import average_precision, roc_auc
from ...optim import adamw_warmup_cosine, decay_groups
from ...rng import seeded_rng, step_seed
from .data import sample_negatives

__all__ = ["GraphModule"]


class GraphModule(L.LightningModule):
    """Trains `GraphVAE` on batches of networks; validation AUC/AP pooled over the networks."""

    def __init__(self, model: GraphVAE, cfg: TrainConfig, *, history: RunHistory, total_steps: int) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.history = history
        self.total_steps = total_steps

    def kl_beta(self) -> float:
        g = self.cfg.model.options
        if g.kl_anneal_epochs <= 0:
            return g.kl_weight
        return g.kl_weight * min(1.0, (self.current_epoch + 1) / g.kl_anneal_epochs)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        n = int(batch.num_nodes)
        known = batch.edge_index[0] * n + batch.edge_index[1]
        beta = self.kl_beta()
        # this step's noise from (seed, step): independent of everything drawn before, so exact on resume
        with seeded_rng(step_seed(self.cfg.trainer.seed, self.current_epoch, batch_idx)):
            neg = sample_negatives(batch, known)
            z = self.model(batch.x, batch.edge_index)
            loss, recon, kl = self.model.loss(z, batch.pos_edge_label_index, neg, beta)
        mean = check_finite(self, loss, "training loss", batch_idx)
        self.history.record_step(self, mean, batch_idx, int(batch.num_graphs))
        self.log_dict({"train/recon": recon.detach(), "train/kl": kl.detach(), "train/kl_beta": beta},
                      on_step=True, on_epoch=False, batch_size=int(batch.num_graphs))
        return loss

    def configure_optimizers(self) -> Any:
        return adamw_warmup_cosine(decay_groups(self.model.named_parameters(), self.cfg.optim.weight_decay),
                                   self.cfg.optim, self.total_steps)

    def on_validation_epoch_start(self) -> None:
        self._val: list[tuple[np.ndarray, np.ndarray]] = []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        z = self.model(batch.x, batch.edge_index)
        pairs = torch.cat([batch.pos_edge_label_index, batch.neg_edge_label_index], dim=1)
        labels = np.r_[np.ones(batch.pos_edge_label_index.shape[1]), np.zeros(batch.neg_edge_label_index.shape[1])]
        self._val.append((self.model.score(z, pairs).double().cpu().numpy(), labels))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        scores = np.concatenate([s for s, _ in self._val])
        labels = np.concatenate([y for _, y in self._val])
        auc, ap = roc_auc(scores, labels), average_precision(scores, labels)
        bce = float(F.binary_cross_entropy(torch.from_numpy(scores).clamp(1e-7, 1 - 1e-7), torch.from_numpy(labels)))
        check_finite(self, torch.tensor(bce), "validation loss")
        self.log("val/auc", auc, prog_bar=True, sync_dist=True)
        self.log("val/ap", ap, sync_dist=True)
        self.log("val/loss", bce, sync_dist=True)
        self.history.record_epoch(self, val_loss=bce, val_auc=auc, val_ap=ap)
