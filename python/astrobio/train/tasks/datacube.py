"""`--model datacube`: the climate emulator on a climate store (planet/star parameters + month
-> the monthly-mean cube), evaluated on held-out planets beside the climatology; see
docs/training.md. Uses `StoreDataModule`, `EmulatorModule`, `evaluate` and `report`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data import BatchIndexSampler
from ...errors import ConfigError, DataNotFoundError
from ...store import Store, open_store
from ..config import TrainConfig
from ..datamodule import Normalization, StoreDataModule, climatology

__all__ = ["DatacubeTask", "open_climate_store", "default_climate_store", "physics_loss"]


def open_climate_store(cfg: TrainConfig) -> Store:
    """`data.store`, else the default dataset's climate part; train and val must be non-empty."""
    store = open_store(cfg.data.store) if cfg.data.store else open_store(default_climate_store())
    for split in ("train", "val"):
        store.samples(split)  # unknown or empty split: ConfigError / DataNotFoundError
    if cfg.data.verify:
        from ..guards import preflight

        preflight(store)  # every chunk and the digests, before anything trains
    return store


def default_climate_store(wait_s: float = 1800.0) -> Path:
    """The default climate store, built (or confirmed up to date) by local rank 0 only: under
    torchrun the other processes of a node wait for it instead of racing to build it too."""
    from ...datasets import default_part

    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        return default_part("climate")
    from ...datasets import part_path

    path = part_path("climate")
    deadline = time.monotonic() + wait_s
    while True:
        if (path / "zarr.json").is_file():
            try:
                open_store(path)
                return path
            except (DataNotFoundError, OSError):
                pass
        if time.monotonic() > deadline:
            raise DataNotFoundError(f"local rank 0 did not finish building the default climate store in {wait_s:.0f} s",
                                    path=str(path), hint="Build it first: astrobio datasets build default --parts climate")
        time.sleep(2.0)


def physics_loss(cfg: TrainConfig, store: Store, norm: Normalization, *, force: bool = False) -> Any:
    """The physics terms (`astrobio.models.PhysicsLoss`) when enabled (or `force`d), else None."""
    if not (cfg.physics.enabled or force):
        return None
    from ...models.physics import PhysicsLoss

    names = [v.name for v in store.variables]
    missing = [v for v in ("ta", "hus") if v not in names]
    if missing:
        raise ConfigError(f"--physics-constraints needs variables ta and hus; the store lacks {missing}")
    level = store.manifest.get("coords", {}).get("level", {})
    sigma = level.get("values")
    if level.get("name") != "sigma" or not sigma or len(sigma) != store.sample_shape[1]:
        raise ConfigError("--physics-constraints needs the store's level coordinate as sigma values (coords.level)")
    return PhysicsLoss(torch.as_tensor(norm.mean), torch.as_tensor(norm.scale), sigma, ta_index=names.index("ta"), hus_index=names.index("hus"),
                       humidity_weight=cfg.physics.humidity_weight, stability_weight=cfg.physics.stability_weight,
                       kappa=cfg.physics.kappa)


class DatacubeTask:
    """Climate emulation on held-out planets; baseline: the train-split climatology."""

    name = "datacube"
    monitor = "val/rmse"
    mode = "min"

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        self.store = open_climate_store(cfg)
        cfg.data.store = str(self.store.path.resolve())
        return {"path": str(self.store.path), "content_digest": self.store.manifest.get("content_digest"),
                "n_samples": self.store.n_samples, "sample_shape": list(self.store.sample_shape)}

    def build(self, cfg: TrainConfig, hardware: dict[str, str]) -> tuple[Any, Any, int]:
        from ...models import build_model
        from ..module import EmulatorModule

        store = self.store
        self.norm = norm = Normalization.from_store(store, cfg.data.normalize)
        self.data = data = StoreDataModule(store, cfg.data, cfg.trainer.seed)
        self.clim = climatology(store, data.train_indices, cfg.data.normalize)
        self.variables = variables = [v.name for v in store.variables]
        if not store.params:
            raise ConfigError(f"{store.path} has no parameter table; the emulator maps parameters to cubes")
        param_names = [p.name for p in store.params]
        self.param_index = None
        if cfg.data.params is not None:
            unknown = [n for n in cfg.data.params if n not in param_names]
            if unknown or not cfg.data.params:
                raise ConfigError(f"data.params names {unknown or 'nothing'}; the store's parameters are {param_names}")
            self.param_index = [param_names.index(n) for n in cfg.data.params]
        n_inputs = len(self.param_index) if self.param_index is not None else len(param_names)
        model: Any = build_model(cfg.model.name, n_inputs, store.sample_shape, **cfg.model.options())
        if hasattr(model, "init_base"):
            model.init_base(torch.as_tensor(self.clim, dtype=torch.float32))
        self.physics = physics_loss(cfg, store, norm)
        meta = {
            "store": {"path": str(store.path), "content_digest": store.manifest.get("content_digest"),
                      "n_samples": store.n_samples, "sample_shape": list(store.sample_shape)},
            "variables": variables, "params": param_names, "inputs": cfg.data.params or param_names,
            "normalize": cfg.data.normalize, **hardware,
        }
        module = EmulatorModule(model, cfg, physics=self.physics, meta=meta, param_index=self.param_index)
        world = cfg.trainer.devices * cfg.trainer.num_nodes
        per_rank = len(BatchIndexSampler(data.train_indices, cfg.data.batch_size, num_replicas=world))
        return data, module, per_rank

    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> dict[str, Any]:
        """RMSE (normalized, per variable in physical units), skill vs the climatology, per split
        and per run (planet); keeps a few held-out cubes for fields.png."""
        from ..evaluate import evaluate

        store, data, model, norm, clim = self.store, self.data, module.model, self.norm, self.clim
        device = module.device
        physics = self.physics if self.physics is not None else self._physics_for_report(cfg)
        splits = {"val": data.val_indices}
        if len(data.test_indices):
            splits["test"] = data.test_indices
        held_out = "test" if "test" in splits else "val"
        n_plot = min(cfg.trainer.plot_samples, len(splits[held_out]))
        keep = np.linspace(0, len(splits[held_out]) - 1, n_plot).round().astype(int).tolist() if n_plot else []
        evaluation: dict[str, Any] = {}
        self.fields, self.samples = None, []
        for name, idx in splits.items():
            res = evaluate(model, store.path, idx, normalize=cfg.data.normalize, norm=norm, climatology=clim,
                           variables=self.variables, batch_size=cfg.data.batch_size, device=device, physics=physics,
                           keep=keep if name == held_out else None, param_index=self.param_index)
            if name == held_out:
                self.fields, self.samples = res["fields"], res["field_samples"]
            res.pop("fields"), res.pop("field_samples")
            # per run (planet): where the model beats the baseline and where it does not
            res["runs"] = {}
            for run_id in store.split.get(name, []):
                one = evaluate(model, store.path, np.asarray(store.run(run_id).samples), normalize=cfg.data.normalize,
                               norm=norm, climatology=clim, variables=self.variables, batch_size=cfg.data.batch_size,
                               device=device, param_index=self.param_index)
                res["runs"][run_id] = {"model": one["model"]["rmse"], "climatology": one["climatology"]["rmse"],
                                       "skill": one["skill"]}
            evaluation[name] = res
        best = module.trainer.checkpoint_callback
        return {"best_val_rmse": getattr(best, "best_score", None), "held_out_split": held_out,
                "units": {v.name: v.units for v in store.variables}, "evaluation": evaluation,
                "metric": "rmse", "baseline": "climatology"}

    def _physics_for_report(self, cfg: TrainConfig) -> Any:
        """The physics terms as diagnostics (also when they were not trained with), if they apply."""
        try:
            return physics_loss(cfg, self.store, self.norm, force=True)
        except ConfigError:
            return None

    def table(self, summary: dict[str, Any]) -> str:
        from ..report import summary_table

        return summary_table(summary)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        """(metric, model, baseline, baseline value) rows for the --mode full table."""
        from ..report import _fmt

        split = summary["held_out_split"]
        res = summary["evaluation"][split]
        return [(f"{split} RMSE [normalized]", _fmt(res["model"]["rmse"]), "climatology", _fmt(res["climatology"]["rmse"]))]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], module: Any, run_dir: Path) -> dict[str, str]:
        from ..report import plot_fields, plot_loss_curves

        store, variables = self.store, self.variables
        out = {"loss_curves": str(plot_loss_curves(module.history, run_dir / "loss_curves.png",
                                                   summary["evaluation"]["val"]["climatology"]["rmse"]))}
        if self.fields and self.fields["truth"]:
            vi, li, label = _plot_choice(store, variables)
            out["fields"] = str(plot_fields(
                self.fields, self.samples, run_dir / "fields.png", var_index=vi, var_name=variables[vi],
                unit=store.variables[vi].units, level_index=li, level_label=label,
                lat=_coord(store, "lat"), lon=_coord(store, "lon")))
        return out


def _plot_choice(store: Store, variables: list[str]) -> tuple[int, int, str]:
    """ta (else the first variable) at the lowest model level (largest sigma)."""
    vi = variables.index("ta") if "ta" in variables else 0
    level = store.manifest.get("coords", {}).get("level", {})
    values = level.get("values")
    if values and len(values) == store.sample_shape[1]:
        li = int(np.argmax(values))
        return vi, li, f"{level.get('name', 'level')} = {values[li]:g}"
    return vi, 0, "level 0"


def _coord(store: Store, name: str) -> list[float] | None:
    values = store.manifest.get("coords", {}).get(name, {}).get("values")
    return [float(v) for v in values] if values else None
