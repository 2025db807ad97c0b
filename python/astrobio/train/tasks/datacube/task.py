"""`--model datacube`: the climate emulator on a climate store (planet/star parameters
-> the monthly-mean cube), evaluated on held-out planets beside the climatology and the physics baseline; see
docs/training.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ....errors import ConfigError
from ....models import DatacubeEmulator
from ...config import TrainConfig
from ...evaluation import Evaluation
from ...optim import optimizer_steps
from ...report import fmt
from .. import BuildContext, Built, Phase
from .data import StoreDataModule, climatology, open_climate_store, param_columns, store_normalization
from .baseline import fit_indices, fit_store_baseline, fit_store_linear, read_departures
from .ensemble import EnsembleResult, run_ensemble
from .evaluate import BASELINES, evaluate
from .kfold import KFoldResult, run_kfold
from .module import EmulatorModule, physics_loss
from .options import DEFAULTS, DatacubeOptions, search_space
from .report import coordinate, plot_choice, plot_fields, plot_loss_curves, summary_table

__all__ = ["DatacubeTask"]


class DatacubeTask:
    """Climate emulation on held-out planets; baselines: the train-split climatology and the
    physics baseline (the regime climatology rescaled by each planet's physical scales), which
    the emulator predicts departures from (`model.options.physics_baseline`)."""

    name = "datacube"
    data_kind = "cube"
    monitor = "val/rmse"
    mode = "min"
    options_type = DatacubeOptions
    defaults = DEFAULTS
    search_space = staticmethod(search_space)  # astrobio tune's default space
    phases = (Phase("datacube", "datacube"),)  # its --mode full phase

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        self.store = store = open_climate_store(cfg)
        return {"n_samples": store.n_samples, "sample_shape": list(store.sample_shape)}

    def build(self, cfg: TrainConfig, ctx: BuildContext) -> Built:
        store = self.store
        self.norm = norm = store_normalization(store, cfg.data.normalize)
        self.data = data = StoreDataModule(store, cfg.data, cfg.trainer.seed)
        self.clim = climatology(store, data.train_indices, cfg.data.normalize)
        self.variables = variables = [v.name for v in store.variables]
        self.param_index = param_columns(store, cfg.data.params)
        param_names = [p.name for p in store.params]
        n_inputs = len(self.param_index) if self.param_index is not None else len(param_names)
        try:
            model = DatacubeEmulator(n_inputs, store.sample_shape, **cfg.model.options.network_options())
        except (TypeError, ValueError) as e:  # widths the network cannot take
            raise ConfigError(f"model {cfg.model.name!r}: {e}") from None
        fit_idx = fit_indices(store, data.train_indices)  # all of them unless memory says otherwise
        self.baseline = fit_store_baseline(store, fit_idx, cfg.data.normalize)
        residual_of = self.baseline if cfg.model.options.physics_baseline else None
        linear = None
        if residual_of is not None and cfg.model.options.linear_departure:
            linear = fit_store_linear(residual_of, store, fit_idx, cfg.data.normalize, self.param_index)
            meta_linear = {"penalty": dict(zip(self.variables, linear.penalty.tolist())), "rule": "leave one training planet out"}
        # the network starts at the mean of what it predicts, its head at zero
        if residual_of is None:
            start = self.clim
        elif linear is not None:
            start = np.zeros(store.sample_shape)  # the linear stage's intercept is the mean departure
        else:
            start = read_departures(residual_of, store, fit_idx, cfg.data.normalize)[1].mean(axis=0)
        model.init_base(torch.as_tensor(start, dtype=torch.float32))
        self.physics = physics_loss(cfg, store, norm)
        meta = {
            "store": {"n_samples": store.n_samples, "sample_shape": list(store.sample_shape)},  # + the runner's identity
            "variables": variables, "params": param_names, "inputs": cfg.data.params or param_names,
            "normalize": cfg.data.normalize, **ctx.hardware,
        }
        if linear is not None:
            meta["linear_departure"] = meta_linear
        if len(fit_idx) < len(data.train_indices):
            meta["baseline_fit_samples"] = int(len(fit_idx))
        per_rank = data.batches_per_epoch(cfg.trainer.devices * cfg.trainer.num_nodes)
        module = EmulatorModule(model, cfg, history=ctx.history, total_steps=optimizer_steps(cfg, per_rank),
                                variables=variables, physics=self.physics, param_index=self.param_index,
                                baseline=residual_of, linear=linear)
        return Built(data, module, per_rank, meta)

    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> Evaluation:
        """RMSE (normalized, per variable in physical units), skill vs the climatology, per split
        and per run (planet); keeps a few held-out cubes for fields.png."""
        store, data, norm, clim = self.store, self.data, self.norm, self.clim
        device = module.device
        module.eval()
        baseline = self.baseline.to(device)
        physics = self.physics if self.physics is not None else self._physics_for_report(cfg)
        splits = {"val": data.val_indices}
        if len(data.test_indices):
            splits["test"] = data.test_indices
        held_out = "test" if "test" in splits else "val"
        n_plot = min(cfg.trainer.plot_samples, len(splits[held_out]))
        keep = np.linspace(0, len(splits[held_out]) - 1, n_plot).round().astype(int).tolist() if n_plot else []
        evaluation: dict[str, Any] = {}
        self.fields, self.samples = None, []
        ensemble = getattr(module, "members", None)  # an ensemble's members: calibration of their spread
        members = (lambda p: torch.stack([m.predict(p) for m in ensemble])) if ensemble else None
        for name, idx in splits.items():
            res = evaluate(module.predict, store.path, idx, normalize=cfg.data.normalize, norm=norm, climatology=clim,
                           variables=self.variables, batch_size=cfg.data.batch_size, device=device, physics=physics,
                           keep=keep if name == held_out else None, baseline=baseline, members=members)
            if name == held_out:
                self.fields, self.samples = res["fields"], res["field_samples"]
            res.pop("fields"), res.pop("field_samples")
            # per run (planet): where the model beats the baseline and where it does not
            res["runs"] = {}
            for run_id in data.split.get(name, []):
                one = evaluate(module.predict, store.path, np.asarray(store.run(run_id).samples), normalize=cfg.data.normalize,
                               norm=norm, climatology=clim, variables=self.variables, batch_size=cfg.data.batch_size,
                               device=device, baseline=baseline)
                res["runs"][run_id] = {"model": one["model"]["rmse"], "climatology": one["climatology"]["rmse"],
                                       "physics_baseline": one["physics_baseline"]["rmse"], "skill": one["skill"],
                                       "skill_physics_baseline": one["skill_physics_baseline"], "n_samples": one["n_samples"],
                                       "rmse_physical": {k: one[k]["rmse_physical"] for k in ("model", *BASELINES)}}
            evaluation[name] = res
        res = evaluation[held_out]
        return Evaluation(
            held_out_split=held_out, metric="rmse", direction="min", model=res["model"]["rmse"],
            baselines={b: res[b]["rmse"] for b in BASELINES if b in res}, evaluation=evaluation,
            details={"units": {v.name: v.units for v in store.variables}, "split": data.split})

    def run_kfold(self, cfg: TrainConfig, k: int) -> KFoldResult:
        """`--kfold K` (`Folds`): k-fold by planet, each fold a normal run."""
        return run_kfold(cfg, k)

    def run_ensemble(self, cfg: TrainConfig, n: int) -> EnsembleResult:
        """`--ensemble N` (`Ensembles`): N seeds, evaluated by their mean prediction."""
        return run_ensemble(type(self)(), cfg, n)

    def _physics_for_report(self, cfg: TrainConfig) -> Any:
        """The physics terms as diagnostics (also when they were not trained with), if they apply."""
        try:
            return physics_loss(cfg, self.store, self.norm, force=True)
        except ConfigError:
            return None

    def table(self, summary: dict[str, Any]) -> str:
        return summary_table(summary)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        split = summary["held_out_split"]
        res = summary["evaluation"][split]
        rows = [(f"{split} RMSE [normalized]", fmt(res["model"]["rmse"]), "climatology", fmt(res["climatology"]["rmse"]))]
        if "physics_baseline" in res:
            rows.append(("", "", "physics baseline", fmt(res["physics_baseline"]["rmse"])))
        return rows

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        out = {"loss_curves": str(plot_loss_curves(history, run_dir / "loss_curves.png",
                                                   summary["evaluation"]["val"]["climatology"]["rmse"]))}
        out.update(self.field_plot(run_dir))
        return out

    def field_plot(self, run_dir: Path) -> dict[str, str]:
        """fields.png of the held-out cubes kept by the last `evaluate` (none kept: no plot)."""
        store, variables = self.store, self.variables
        out: dict[str, str] = {}
        if self.fields and self.fields["truth"]:
            vi, li, label = plot_choice(store, variables)
            names = [f"{store.run_of(i).id} (sample {i})" for i in self.samples]
            out["fields"] = str(plot_fields(
                self.fields, names, run_dir / "fields.png", var_index=vi, var_name=variables[vi],
                unit=store.variables[vi].units, level_index=li, level_label=label,
                lat=coordinate(store, "lat"), lon=coordinate(store, "lon")))
        return out
