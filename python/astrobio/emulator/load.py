"""Load a trained climate emulator from a run folder: its chosen checkpoint (best, else last;
`torch.load(weights_only=True)`), the run's config, the training store's normalization, the
planet-parameter names and their training ranges. An ensemble folder (`--ensemble N`: one run
per `member-<i>/`) loads every member.

The network, physics baseline and linear stage are the training task's own modules
(`EmulatorModule.predict` is the one prediction function); their buffers come from the
checkpoint, nothing is refitted. The normalization comes from the training store through the
Rust core (`store_normalization`), as in training.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataNotFoundError, IntegrityError
from ..models.datacube import DatacubeEmulator
from ..models.baseline import PhysicsBaseline
from ..models.linear import LinearDeparture
from ..reader import CubeReader, Normalization
from ..stores.cube import Store, Variable, open_store
from ..train.checkpoint import load_checkpoint, restore_weights
from ..train.config import TrainConfig
from ..train.resolve import config_from_dict
from ..train.history import RunHistory
from ..train.tasks.datacube import EmulatorModule, param_columns, store_normalization
from ..train.tasks.datacube.data import resolve_split

__all__ = ["Emulator", "load_emulator", "ExtrapolationWarning", "run_checkpoints", "to_normalized"]


class ExtrapolationWarning(UserWarning):
    """A planet parameter lies outside the range the emulator was trained on."""


def run_checkpoints(run: str | Path) -> tuple[Path, list[Path]]:
    """(run folder, chosen checkpoint of each member): a .ckpt file; a run folder (best.ckpt, else
    last.ckpt); or an ensemble folder whose `member-<i>/` are run folders."""
    path = Path(run)
    if path.is_file():
        return path.parent.parent if path.parent.name == "checkpoints" else path.parent, [path]
    if not path.is_dir():
        raise DataNotFoundError("no run folder", path=str(path), hint="Pass the --output-dir of a training run")
    members = sorted((p for p in path.glob("member-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1])
                     if p.name.split("-")[1].isdigit() else 0)
    folders = members or [path]
    chosen = []
    for folder in folders:
        for name in ("best.ckpt", "last.ckpt"):
            if (folder / "checkpoints" / name).is_file():
                chosen.append(folder / "checkpoints" / name)
                break
        else:
            raise DataNotFoundError("the run has no checkpoint", path=str(folder / "checkpoints"),
                                    hint="Train it first: python -m astrobio.train --output-dir " + str(path))
    return path, chosen


def to_normalized(norm: Normalization, x: np.ndarray) -> np.ndarray:
    """The inverse of `Normalization.to_physical`, with the same statistics (from the core):
    cubes [..., V, L, H, W] or parameters [..., P], float64."""
    x = np.asarray(x, np.float64)
    if norm.mean.ndim == 2:
        return (x - norm.mean[:, :, None, None]) / norm.scale[:, :, None, None]
    return (x - norm.mean) / norm.scale


@dataclass
class Emulator:
    """A trained climate emulator (one run, or the members of an ensemble) ready to predict.

    Attributes:
        run_dir: the run (or ensemble) folder.
        checkpoints: the checkpoint loaded for each member.
        config: the run's resolved training config (of the first member).
        members: the trained modules (`EmulatorModule`; eval mode).
        store: the training store (its normalization, grid and training planets).
        variables: the cube's variables (names, units, long names), in order.
        params: the parameter row the model takes (names, units), in order.
        training_range: per parameter, (min, max) over the training planets.
        norm: the cube normalization; param_norm: the parameters'.
        lineage: which data the run saw (store path and digest; registered dataset version if any).
    """

    run_dir: Path
    checkpoints: list[Path]
    config: TrainConfig
    members: list[EmulatorModule]
    store: Store
    variables: list[Variable]
    params: list[Variable]
    training_range: dict[str, tuple[float, float]]
    norm: Normalization
    param_norm: Normalization
    lineage: dict[str, Any]
    device: torch.device

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def ensemble(self) -> bool:
        return len(self.members) > 1

    @property
    def coords(self) -> dict[str, Any]:
        """The training store's grid (`coords` of its manifest: level, lat, lon)."""
        return dict(self.store.manifest.get("coords") or {})

    def out_of_range(self, rows: np.ndarray) -> list[str]:
        """'name=value (trained on lo..hi)' for each parameter value of `rows` [B, P] (physical)
        outside the training range."""
        out = []
        for j, name in enumerate(self.param_names):
            lo, hi = self.training_range[name]
            for x in np.atleast_2d(rows)[:, j]:
                if not lo <= float(x) <= hi:
                    out.append(f"{name}={float(x):.4g} (trained on {lo:.4g}..{hi:.4g})")
        return out

    def check_range(self, rows: np.ndarray, labels: Sequence[str] | None = None) -> None:
        """Warn (`ExtrapolationWarning`) naming each parameter of `rows` outside the training range."""
        rows = np.atleast_2d(rows)
        for i, row in enumerate(rows):
            outside = self.out_of_range(row[None])
            if outside:
                who = f"{labels[i]}: " if labels else ""
                warnings.warn(f"{who}outside the training range, the emulator extrapolates: {', '.join(outside)}",
                              ExtrapolationWarning, stacklevel=3)

    @torch.no_grad()
    def predict_normalized(self, params: np.ndarray | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Every member's cubes [M, B, V, L, H, W] (normalized) for normalized parameter rows [B, P]."""
        x = torch.as_tensor(np.asarray(params, np.float32) if not isinstance(params, torch.Tensor) else params,
                            dtype=torch.float32, device=self.device)
        outs = []
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start : start + batch_size]
            outs.append(torch.stack([m.predict(chunk).float() for m in self.members]))
        return torch.cat(outs, dim=1)

    def predict_physical(self, rows: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
        """(mean [B, V, L, H, W], spread or None) in physical units for physical parameter rows
        [B, P] in `param_names` order; the spread is the members' standard deviation (ensembles)."""
        rows = np.atleast_2d(np.asarray(rows, np.float64))
        if rows.shape[1] != len(self.params):
            raise ConfigError(f"parameter rows need {len(self.params)} columns ({', '.join(self.param_names)}), got {rows.shape[1]}")
        pred = self.predict_normalized(to_normalized(self.param_norm, rows), batch_size).double().cpu().numpy()
        physical = self.norm.to_physical(pred)  # [M, B, V, L, H, W]
        mean = physical.mean(axis=0)
        spread = physical.std(axis=0) if self.ensemble else None
        return mean.astype(np.float32), None if spread is None else spread.astype(np.float32)

    def predict(self, planet: str | None = None, *, params: Mapping[str, Any] | None = None,
                catalogue: str | None = None, where: str | None = None, warn: bool = True) -> Any:
        """A CF `xarray.Dataset` of the emulated climate: for a named `planet` (a catalogue planet
        or one of `astrobio simulate`'s planets, e.g. "earth"), for explicit `params`
        ({name: value}; see `astrobio.emulator.predict.planet_rows`), or for every row of a
        catalogue table (`catalogue` = path or name@vN, `where` a pandas query)."""
        from .predict import predict_dataset

        return predict_dataset(self, planet=planet, params=params, catalogue=catalogue, where=where, warn=warn)


def _open_training_store(meta: Mapping[str, Any], store: str | Path | None) -> Store:
    saved = meta.get("store", {})
    where = store if store is not None else saved.get("path")
    try:
        opened = open_store(where)
    except DataNotFoundError:
        raise DataNotFoundError("the run's training store is needed (normalization, grid, training planets)", path=str(where),
                                hint="Pass the store it was trained on: load_emulator(run, store=PATH) or --train-store PATH") from None
    if saved.get("content_digest") and opened.manifest.get("content_digest") != saved["content_digest"]:
        raise IntegrityError(f"store {where} has digest {opened.manifest.get('content_digest')}, the run was trained on "
                             f"{saved['content_digest']}", path=str(where))
    return opened


def _member(ckpt: dict[str, Any], store: Store, device: torch.device) -> tuple[TrainConfig, EmulatorModule]:
    """The trained module of one checkpoint, built from its config and its own buffers."""
    cfg = config_from_dict(ckpt["astrobio"]["config"])
    if cfg.model.name != "datacube":
        raise ConfigError(f"the run trained --model {cfg.model.name}; the emulator is the datacube model")
    meta, state = ckpt["astrobio"]["meta"], ckpt["state_dict"]
    variables = list(meta.get("variables") or [v.name for v in store.variables])
    param_names = list(meta.get("params") or [p.name for p in store.params])
    param_index = param_columns(store, cfg.data.params)
    n_inputs = len(param_index) if param_index is not None else len(param_names)
    model = DatacubeEmulator(n_inputs, store.sample_shape, **cfg.model.options.network_options())
    baseline = linear = None
    if "baseline.regime_mean" in state:  # shapes from the checkpoint; values restored below
        baseline = PhysicsBaseline(variables, param_names, *(np.zeros(tuple(state[f"baseline.{k}"].shape)) for k in
                                   ("regime_mean", "exponent", "cube_mean", "cube_scale", "param_mean", "param_scale")))
    if "linear.weight" in state:
        linear = LinearDeparture(*(np.zeros(tuple(state[f"linear.{k}"].shape)) for k in ("input_mean", "intercept", "weight", "penalty")))
    module = EmulatorModule(model, cfg, history=RunHistory(), total_steps=1, variables=variables,
                            param_index=param_index, baseline=baseline, linear=linear)
    restore_weights(module, state)
    return cfg, module.to(device).eval()


def load_emulator(run: str | Path, *, store: str | Path | None = None, device: str | torch.device = "cpu") -> Emulator:
    """The emulator of a training run: `run` is a run folder, an ensemble folder or a .ckpt file.
    `store` relocates the training store (same content digest) when it moved.

    Raises:
        DataNotFoundError: no checkpoint, or the training store is missing.
        IntegrityError: a checkpoint that is not weights-only, or a store with another digest.
        ConfigError: not a climate-emulator run; members that disagree.
    """
    run_dir, paths = run_checkpoints(run)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda asked for, but CUDA is not available")
    ckpts = [load_checkpoint(p) for p in paths]
    metas = [c["astrobio"]["meta"] for c in ckpts]
    digests = {m.get("store", {}).get("content_digest") for m in metas}
    if len(digests) > 1:
        raise ConfigError(f"the members of {run_dir} were trained on different stores: {sorted(map(str, digests))}")
    opened = _open_training_store(metas[0], store)
    built = [_member(c, opened, dev) for c in ckpts]
    cfg = built[0][0]
    reader = CubeReader(opened.path, normalize="none")
    train_runs = resolve_split(opened, cfg.data.split)["train"]
    raw = np.asarray(reader.native.read_params(opened.run_samples(train_runs).tolist()), np.float64)
    params = opened.params
    ranges = {p.name: (float(raw[:, j].min()), float(raw[:, j].max())) for j, p in enumerate(params)}
    lineage: dict[str, Any] = {"store": str(opened.path), "store_digest": opened.manifest.get("content_digest"),
                               "store_name": opened.manifest.get("name")}
    if metas[0].get("data"):
        lineage["dataset"] = metas[0]["data"]
    summary = run_dir / "summary.json"
    if summary.is_file():
        lineage["summary"] = str(summary)
        data = json.loads(summary.read_text()).get("data")
        if data and "dataset" not in lineage:
            lineage["dataset"] = data
    return Emulator(run_dir=run_dir, checkpoints=paths, config=cfg, members=[m for _, m in built], store=opened,
                    variables=opened.variables, params=params, training_range=ranges,
                    norm=store_normalization(opened, cfg.data.normalize), param_norm=CubeReader(opened.path, normalize=cfg.data.normalize).params_normalization(),
                    lineage=lineage, device=dev)
