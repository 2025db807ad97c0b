"""The datacube emulator's LightningModule: normalized MSE (+ the optional physics terms),
input-noise regularization, validation RMSE reduced exactly across ranks. Shared behaviour comes
from plain functions: the non-finite guard (`check_finite`), the run history (`RunHistory`) and
AdamW with warmup + cosine (`adamw_warmup_cosine`)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from ....errors import ConfigError
from ....models.baseline import PhysicsBaseline
from ....models.linear import LinearDeparture
from ....models.physics import PhysicsLoss
from ....stores.cube import Store
from ...config import TrainConfig
from ...guards import check_finite
from ...history import RunHistory
from ...optim import adamw_warmup_cosine, decay_groups
from .data import Normalization

__all__ = ["EmulatorModule", "physics_loss"]


def physics_loss(cfg: TrainConfig, store: Store, norm: Normalization, *, force: bool = False) -> PhysicsLoss | None:
    """The physics terms (`astrobio.models.PhysicsLoss`) when enabled (or `force`d), else None."""
    physics = cfg.model.options.physics
    if not (physics.enabled or force):
        return None
    names = [v.name for v in store.variables]
    missing = [v for v in ("ta", "hus") if v not in names]
    if missing:
        raise ConfigError(f"--physics-constraints needs variables ta and hus; the store lacks {missing}")
    level = store.manifest.get("coords", {}).get("level", {})
    sigma = level.get("values")
    if level.get("name") != "sigma" or not sigma or len(sigma) != store.sample_shape[1]:
        raise ConfigError("--physics-constraints needs the store's level coordinate as sigma values (coords.level)")
    return PhysicsLoss(torch.as_tensor(norm.mean), torch.as_tensor(norm.scale), sigma, ta_index=names.index("ta"), hus_index=names.index("hus"),
                       humidity_weight=physics.humidity_weight, stability_weight=physics.stability_weight,
                       kappa=physics.kappa)


class EmulatorModule(L.LightningModule):
    """Trains `model` (params [B, P] -> cube [B, V, L, H, W]); `physics` is an optional
    `PhysicsLoss`; `param_index` the store's parameter columns the model sees (None: all);
    `baseline` an optional `astrobio.models.PhysicsBaseline` of the full parameter row: the model
    then predicts the departure from it (`predict` adds the two); `linear` an optional
    `astrobio.models.LinearDeparture` of the input columns whose departures the network corrects."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, *, history: RunHistory, total_steps: int,
                 variables: list[str], physics: nn.Module | None = None, param_index: list[int] | None = None,
                 baseline: PhysicsBaseline | None = None, linear: LinearDeparture | None = None) -> None:
        super().__init__()
        self.model = model
        self.baseline = baseline
        self.linear = linear
        self.cfg = cfg
        self.history = history
        self.total_steps = total_steps
        self.param_index = param_index
        self.physics = physics
        self.variables = list(variables)
        self._val_sse: torch.Tensor | None = None
        self._val_n: torch.Tensor | None = None
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None  # restored from a checkpoint, applied lazily

    def inputs(self, params: torch.Tensor) -> torch.Tensor:
        """The model's input columns of a batch's parameter table."""
        return params if self.param_index is None else params[:, self.param_index]

    def predict(self, params: torch.Tensor, model_inputs: torch.Tensor | None = None) -> torch.Tensor:
        """The emulated cube for a batch's full parameter table: the network's output of its input
        columns (`model_inputs`, default `inputs(params)`), plus the physics baseline and the
        linear stage (of the clean input columns) if any."""
        out = self.model(self.inputs(params) if model_inputs is None else model_inputs)
        if self.linear is not None:
            out = out + self.linear(self.inputs(params)).to(out.dtype)
        if self.baseline is None:
            return out
        base, departure = self.baseline.terms(params)
        return base.to(out.dtype) + departure.to(out.dtype) * out

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        return self.predict(params)

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
        pred = self.predict(batch["params"], self._params(self.inputs(batch["params"])))
        mse = F.mse_loss(pred.float(), target.float())
        loss = mse
        logs = {"train/mse": mse.detach()}
        if self.physics is not None:
            penalty, terms = self.physics(pred)
            loss = loss + penalty
            logs.update({f"train/physics_{k}": v.detach() for k, v in terms.items()})
        mean_loss = check_finite(self, loss, "training loss", batch_idx)
        bs = int(target.shape[0])
        self.history.record_step(self, mean_loss, batch_idx, bs)
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=bs)
        return loss

    def configure_optimizers(self) -> Any:
        return adamw_warmup_cosine(decay_groups(self.model.named_parameters(), self.cfg.optim.weight_decay),
                                   self.cfg.optim, self.total_steps)

    # ---------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        shape = getattr(self.model, "out_shape", None)
        v = int(shape[0]) if shape is not None else len(self.variables)
        self._val_sse = torch.zeros(v, dtype=torch.float64, device=self.device)
        self._val_n = torch.zeros((), dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        assert self._val_sse is not None and self._val_n is not None
        target = batch["cubes"].float()
        pred = self.predict(batch["params"]).float()
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
        check_finite(self, val_rmse, "validation RMSE")
        # Already reduced exactly (sums over every rank); sync_dist averages identical values.
        self.log("val/rmse", val_rmse.float(), prog_bar=True, sync_dist=True)
        self.log("val/loss", val_mse.float(), sync_dist=True)
        for name, m in zip(self.variables, mse_by_var.sqrt().tolist()):
            self.log(f"val/rmse_{name}", m, sync_dist=True)
        self.history.record_epoch(self, val_loss=float(val_mse), val_rmse=float(val_rmse),
                                  val_rmse_by_var=[float(x) for x in mse_by_var.sqrt().tolist()])

    # ---------------------------------------------------------------- checkpoints: the noise generator's state
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["astrobio"]["noise_rng"] = self._generator.get_state() if self._generator is not None else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["astrobio"].get("noise_rng")
        self._generator, self._generator_state = None, (state.cpu() if state is not None else None)
