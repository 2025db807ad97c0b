"""The LightningModule around a datacube model: loss (normalized MSE + optional physics terms),
the non-finite guard, validation RMSE reduced exactly across ranks, the warmup + cosine LR
schedule, and the run history that travels in every checkpoint."""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Iterator
from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AstrobioError
from .checkpoint import CHECKPOINT_FORMAT
from .config import TrainConfig

__all__ = ["NonFiniteLossError", "TaskModule", "EmulatorModule", "warmup_cosine", "seeded_rng", "step_seed"]


class NonFiniteLossError(AstrobioError, FloatingPointError):
    """The training loss or a validation metric became NaN/Inf; the run stops (it is never
    counted as an improvement, and no checkpoint is written from that state)."""


def warmup_cosine(step: int, *, warmup: int, total: int, floor: float) -> float:
    """LR multiplier: linear warmup over `warmup` steps, then cosine from 1 to `floor` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


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


class TaskModule(L.LightningModule):
    """What every model's LightningModule shares: `self.model` (an nn.Module), the config and
    `meta` saved in checkpoints, the run history (per-step loss averaged over ranks, one dict
    per epoch), the non-finite guard, AdamW with warmup + cosine, and the checkpoint section
    `["astrobio"]`. Subclasses implement training/validation and may add `extra_state()`."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, *, meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.meta = dict(meta or {})
        # steps: [epoch, batch_idx, global_step, loss averaged over ranks] per training batch;
        # epochs: one dict per epoch
        self.history: dict[str, list[Any]] = {"steps": [], "epochs": []}
        #: optimizer steps of the whole run, for the LR schedule; set by the trainer before fit.
        #: (Lightning's `estimated_stepping_batches` would load the train loader before the
        #: checkpoint's loader state is restored, and a resumed run would replay the epoch.)
        self.total_steps: int | None = None

    # ---------------------------------------------------------------- guard
    def _check_finite(self, value: torch.Tensor, what: str, batch_idx: int | None = None) -> torch.Tensor:
        """The value averaged over ranks; raises NonFiniteLossError on every rank together (one
        all-reduce carries both, so no rank is left waiting in a collective)."""
        v = value.detach().float().reshape(())
        stats = torch.stack([v, (~torch.isfinite(v)).float()])
        world = self.trainer.world_size
        if world > 1:
            stats = self.trainer.strategy.reduce(stats, reduce_op="sum")
        if float(stats[1]) > 0:
            where = f"epoch {self.current_epoch + 1}, optimizer step {self.global_step}"
            if batch_idx is not None:
                where += f", batch {batch_idx}"
            raise NonFiniteLossError(
                f"non-finite {what} ({float(v)} on rank {self.global_rank}) at {where}; training stopped "
                "(check the learning rate, precision and data; resume from the last checkpoint with --resume)")
        return stats[0] / world

    def _record_step(self, mean_loss: torch.Tensor, batch_idx: int, batch_size: int) -> None:
        # the mean over ranks: identical on every rank, so a resumed rank's history is its own
        self.history["steps"].append([self.current_epoch, batch_idx, self.global_step, float(mean_loss)])
        self.log("train/loss", mean_loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False, batch_size=batch_size)

    def _epoch_train_loss(self) -> float:
        losses = [s[3] for s in self.history["steps"] if s[0] == self.current_epoch]
        return sum(losses) / len(losses) if losses else float("nan")

    def _record_epoch(self, **values: Any) -> None:
        self.history["epochs"].append({"epoch": self.current_epoch + 1, "step": int(self.global_step),
                                       "train_loss": self._epoch_train_loss(), **values,
                                       "lr": float(self.trainer.optimizers[0].param_groups[0]["lr"])})

    # ---------------------------------------------------------------- optimizer
    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """(name, parameter) pairs the optimizer updates (frozen ones are left out)."""
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def configure_optimizers(self) -> Any:
        o = self.cfg.optim
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, p in self.trainable_parameters():
            # weight decay on conv/linear weights only; not on biases, norms or the learned volumes
            (decay if p.ndim >= 2 and name.endswith(".weight") else no_decay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=o.lr)
        if self.total_steps is None:
            raise RuntimeError(f"{type(self).__name__}.total_steps must be set before fit")
        total = max(1, int(self.total_steps))
        warmup = int(round(o.warmup_fraction * total))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(warmup_cosine, warmup=warmup, total=total, floor=o.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}

    def load_model_state(self, state: dict[str, Any]) -> None:
        """Load the `model.*` tensors of a checkpoint's state_dict into `self.model`."""
        self.model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})

    # ---------------------------------------------------------------- checkpoints
    def extra_state(self) -> dict[str, Any]:
        """Plain values/tensors a subclass adds to the checkpoint's astrobio section."""
        return {}

    def load_extra_state(self, section: dict[str, Any]) -> None:
        """Restore what `extra_state` saved."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        sampler = None
        loader = getattr(self.trainer, "train_dataloader", None)
        if loader is not None and hasattr(loader, "state_dict"):
            sampler = loader.state_dict()
        checkpoint["astrobio"] = {
            "format": CHECKPOINT_FORMAT,
            "config": self.cfg.to_dict(),
            "history": copy.deepcopy(self.history),
            "meta": copy.deepcopy(self.meta),
            "sampler": sampler,  # a copy for inspection; resume uses Lightning's loop state
            **self.extra_state(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = copy.deepcopy(checkpoint["astrobio"]["history"])
        self.load_extra_state(checkpoint["astrobio"])


class EmulatorModule(TaskModule):
    """Wraps `model` (params [B, P] -> cube [B, V, L, H, W]); `physics` is an optional
    `astrobio.models.PhysicsLoss`; `meta` (plain values: store identity, variable names, baseline)
    is saved in checkpoints beside the config and history."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, *, physics: nn.Module | None = None,
                 meta: dict[str, Any] | None = None, param_index: list[int] | None = None) -> None:
        super().__init__(model, cfg, meta=meta)
        # the store's parameter columns the model sees (data.params); None: all of them
        self.param_index = param_index
        self.physics = physics
        self.variables: list[str] = list(self.meta.get("variables", []))
        self._val_sse: torch.Tensor | None = None
        self._val_n: torch.Tensor | None = None
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None  # restored from a checkpoint, applied lazily

    def inputs(self, params: torch.Tensor) -> torch.Tensor:
        """The model's input columns of a batch's parameter table."""
        return params if self.param_index is None else params[:, self.param_index]

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        return self.model(self.inputs(params))

    # ---------------------------------------------------------------- training
    def _noise_generator(self) -> torch.Generator:
        """The generator of the parameter noise: its own (seeded, checkpointed) state, so the
        DataLoader's draws from the global RNG cannot shift it and resume stays exact."""
        if self._generator is None:
            self._generator = torch.Generator(device=self.device)
            if self._generator_state is not None:
                self._generator.set_state(self._generator_state)
            else:
                self._generator.manual_seed(self.cfg.trainer.seed)
        return self._generator

    def _params(self, params: torch.Tensor) -> torch.Tensor:
        """Training input: the normalized parameters plus N(0, param_noise^2) noise. Training with
        input noise is Tikhonov regularization of the map's gradient (Bishop 1995, Neural Comput.
        7(1):108): with a handful of planets it keeps the emulator smooth between them."""
        sigma = self.cfg.optim.param_noise
        if sigma <= 0:
            return params
        g = self._noise_generator()
        noise = torch.randn(params.shape, generator=g, device=params.device, dtype=params.dtype)  # real-data-ok: input-noise regularization of real parameters, not data
        return params + sigma * noise

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        target = batch["cubes"]
        pred = self.model(self._params(self.inputs(batch["params"])))
        mse = F.mse_loss(pred.float(), target.float())
        loss = mse
        logs = {"train/mse": mse.detach()}
        if self.physics is not None:
            penalty, terms = self.physics(pred)
            loss = loss + penalty
            logs.update({f"train/physics_{k}": v.detach() for k, v in terms.items()})
        mean_loss = self._check_finite(loss, "training loss", batch_idx)
        bs = int(target.shape[0])
        self._record_step(mean_loss, batch_idx, bs)
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=bs)
        return loss

    # ---------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        shape = getattr(self.model, "out_shape", None)
        v = int(shape[0]) if shape is not None else len(self.variables)
        self._val_sse = torch.zeros(v, dtype=torch.float64, device=self.device)
        self._val_n = torch.zeros((), dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        assert self._val_sse is not None and self._val_n is not None
        target = batch["cubes"].float()
        pred = self.model(self.inputs(batch["params"])).float()
        err = (pred - target).double() ** 2
        self._val_sse += err.sum(dim=(0, 2, 3, 4))
        self._val_n += float(target[:, 0].numel())

    def on_validation_epoch_end(self) -> None:
        assert self._val_sse is not None and self._val_n is not None
        sse, n = self._val_sse, self._val_n
        if self.trainer.world_size > 1:
            sse = self.trainer.strategy.reduce(sse, reduce_op="sum")
            n = self.trainer.strategy.reduce(n, reduce_op="sum")
        mse_by_var = sse / n.clamp(min=1.0)
        val_mse = mse_by_var.mean()
        val_rmse = val_mse.sqrt()
        if self.trainer.sanity_checking:
            return
        self._check_finite(val_rmse, "validation RMSE")
        # Already reduced exactly (sums over every rank); sync_dist averages identical values.
        self.log("val/rmse", val_rmse.float(), prog_bar=True, sync_dist=True)
        self.log("val/loss", val_mse.float(), sync_dist=True)
        for name, m in zip(self.variables, mse_by_var.sqrt().tolist()):
            self.log(f"val/rmse_{name}", m, sync_dist=True)
        self._record_epoch(val_loss=float(val_mse), val_rmse=float(val_rmse),
                           val_rmse_by_var=[float(x) for x in mse_by_var.sqrt().tolist()])

    # ---------------------------------------------------------------- checkpoints
    def extra_state(self) -> dict[str, Any]:
        return {"noise_rng": self._generator.get_state() if self._generator is not None else None}

    def load_extra_state(self, section: dict[str, Any]) -> None:
        state = section.get("noise_rng")
        self._generator, self._generator_state = None, (state.cpu() if state is not None else None)
