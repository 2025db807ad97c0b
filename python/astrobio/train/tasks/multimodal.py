"""`--model multimodal`: fuse a climate sample's two modalities to predict its surface climate.

Task (per sample = one planet-month of the climate store, split by planet as the store says):
  targets  from the lowest model level (largest sigma) of `ta`, in physical units:
           t_surface   area-weighted (cos latitude) global mean temperature [K]
           liquid_fraction  area-weighted fraction of the grid with 273.15 K <= T <= 373.15 K [1]
  inputs   params: the store's planet/star parameters and the month (sin, cos), normalized
           cube:   the other fields of the same sample (`model.multimodal.cube_variables`;
                   default ua, va, hus, wap on every level; `ta` is refused: the targets come from it)
Neither input contains the target: the parameters give the forcing, the cube the circulation
and moisture the temperature has shaped. Fusion has to combine the two.

Models: `astrobio.models.FusionModel`: a params encoder, a cube encoder, a head on each and a
fusion head on both embeddings, trained together (loss: the mean over heads of the MSE on the
train-standardized targets). The same run therefore reports params-only, cube-only and fusion
on the same held-out planets. Baseline: the train mean of each target. Metric: RMSE per target
in physical units and the RMSE on standardized targets (mean over targets); the monitored
metric is the fusion head's (or, with one modality, that head's) validation RMSE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ...data import BatchIndexSampler, make_loader
from ...errors import ConfigError, IntegrityError
from ..config import TrainConfig
from ..datamodule import Normalization
from ..module import TaskModule, seeded_rng, step_seed
from .datacube import open_climate_store

__all__ = ["MultimodalTask", "FusionModule", "surface_targets", "TARGETS"]

#: target name -> unit
TARGETS = {"t_surface": "K", "liquid_fraction": "1"}
FREEZE_K, BOIL_K = 273.15, 373.15


def surface_targets(ta_lowest: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """[N, 2] (t_surface, liquid_fraction) from the lowest-level temperature [N, H, W] in K."""
    w = np.cos(np.deg2rad(np.asarray(lat_deg, float)))[None, :, None] * np.ones_like(ta_lowest)
    w = w / w.sum(axis=(1, 2), keepdims=True)
    liquid = (ta_lowest >= FREEZE_K) & (ta_lowest <= BOIL_K)
    return np.stack([(w * ta_lowest).sum(axis=(1, 2)), (w * liquid).sum(axis=(1, 2))], axis=1)


class _InMemory(torch.utils.data.Dataset):
    """The whole (small) store in memory; a sampler's batch of indices -> one batch dict."""

    def __init__(self, params: np.ndarray, cube: np.ndarray, y: np.ndarray) -> None:
        self.params, self.cube, self.y = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (params, cube, y))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, indices: Any) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return {"params": self.params[idx], "cube": self.cube[idx], "y": self.y[idx], "index": idx}


class _DataModule(L.LightningDataModule):
    def __init__(self, dataset: _InMemory, splits: dict[str, np.ndarray], batch_size: int, seed: int) -> None:
        super().__init__()
        self.dataset, self.splits, self.batch_size, self.seed = dataset, splits, batch_size, seed

    def _rank(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self) -> Any:
        rank, world = self._rank()
        sampler = BatchIndexSampler(self.splits["train"], self.batch_size, shuffle=True, seed=self.seed,
                                    num_replicas=world, rank=rank, pad=True)
        return make_loader(self.dataset, sampler, stateful=True)  # type: ignore[arg-type]

    def val_dataloader(self) -> Any:
        rank, world = self._rank()
        sampler = BatchIndexSampler(self.splits["val"], self.batch_size, num_replicas=world, rank=rank, pad=False)
        return make_loader(self.dataset, sampler)  # type: ignore[arg-type]


class FusionModule(TaskModule):
    """Trains every head of a `FusionModel`; validation RMSE (standardized targets) per head,
    summed exactly across ranks; the monitored `val/rmse` is the last head's (fusion)."""

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # dropout drawn from (seed, step): a resumed run repeats it exactly
        with seeded_rng(step_seed(self.cfg.trainer.seed, self.current_epoch, batch_idx)):
            preds = self.model(batch["params"], batch["cube"])
        losses = {k: F.mse_loss(p.float(), batch["y"]) for k, p in preds.items()}
        loss = torch.stack(list(losses.values())).mean()
        mean = self._check_finite(loss, "training loss", batch_idx)
        bs = int(batch["y"].shape[0])
        self._record_step(mean, batch_idx, bs)
        self.log_dict({f"train/mse_{k}": v.detach() for k, v in losses.items()}, on_step=True, on_epoch=False, batch_size=bs)
        return loss

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
        self._check_finite(rmse[-1], "validation RMSE")
        self.log("val/rmse", rmse[-1].float(), prog_bar=True, sync_dist=True)
        for head, r in zip(self.model.heads, rmse.tolist()):
            self.log(f"val/rmse_{head}", r, sync_dist=True)
        self._record_epoch(val_loss=float(rmse[-1]) ** 2, val_rmse=float(rmse[-1]),
                           val_rmse_by_head=dict(zip(self.model.heads, rmse.tolist())))


def _init_from(model: torch.nn.Module, path: str, modality: str) -> None:
    """Copy the `modality` encoder and head weights of another run's checkpoint into `model`."""
    from ..checkpoint import load_checkpoint

    state = load_checkpoint(path)["state_dict"]
    prefixes = (f"model.{modality}_encoder.", f"model.head_{modality}.")
    picked = {k.removeprefix("model."): v for k, v in state.items() if k.startswith(prefixes)}
    if not picked:
        raise ConfigError(f"{path} has no {modality} encoder (was it trained with --model multimodal and modality {modality}?)")
    own = model.state_dict()
    wrong = [k for k, v in picked.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise ConfigError(f"{path}: the {modality} encoder does not fit this model ({wrong[0]}); use the same model.multimodal options")
    model.load_state_dict(picked, strict=False)


class MultimodalTask:
    """Surface climate from parameters, cube, and both; baseline: the train mean."""

    name = "multimodal"
    monitor = "val/rmse"
    mode = "min"

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        from .datacube import DatacubeTask

        identity = DatacubeTask.open(self, cfg)  # type: ignore[arg-type]
        names = [v.name for v in self.store.variables]
        o = cfg.model.multimodal
        if "ta" not in names:
            raise ConfigError(f"--model multimodal derives its targets from ta; {self.store.path} has {names}")
        if "ta" in o.cube_variables:
            raise ConfigError("model.multimodal.cube_variables must not include ta: the targets are computed from it")
        unknown = [v for v in o.cube_variables if v not in names]
        if unknown or not o.cube_variables:
            raise ConfigError(f"model.multimodal.cube_variables names {unknown or 'nothing'}; the store has {names}")
        self.identity = identity
        return identity

    def build(self, cfg: TrainConfig, hardware: dict[str, str]) -> tuple[Any, Any, int]:
        from ...models.multimodal import FusionModel
        from ...reader import CubeReader

        store, o = self.store, cfg.model.multimodal
        names = [v.name for v in store.variables]
        level = store.manifest.get("coords", {}).get("level", {}).get("values")
        lat = store.manifest.get("coords", {}).get("lat", {}).get("values")
        if not lat or len(lat) != store.sample_shape[2]:
            raise IntegrityError("the store has no latitude coordinate (coords.lat) for the area weights", path=str(store.path))
        lowest = int(np.argmax(level)) if level and len(level) == store.sample_shape[1] else 0
        batch = CubeReader(store.path, normalize="per_variable").read(np.arange(store.n_samples))
        norm = Normalization.from_store(store, "per_variable")
        ta = names.index("ta")
        ta_k = batch.cubes[:, ta, lowest].astype(np.float64) * norm.scale[ta, lowest] + norm.mean[ta, lowest]
        y = surface_targets(ta_k, np.asarray(lat))
        self.splits = {s: store.samples(s) for s in ("train", "val")}
        if store.split.get("test"):
            self.splits["test"] = store.samples("test")
        self.y = y
        self.y_mean = y[self.splits["train"]].mean(axis=0)
        std = y[self.splits["train"]].std(axis=0)
        self.y_std = np.where(std > 0, std, 1.0)
        cube = batch.cubes[:, [names.index(v) for v in o.cube_variables]]
        self.dataset = _InMemory(batch.params, cube, (y - self.y_mean) / self.y_std)
        try:
            model = FusionModel(batch.params.shape[1], cube.shape[1:], len(TARGETS), modalities=o.modalities,
                                embed=o.embed, cube_channels=o.cube_channels, dropout=o.dropout)
        except ValueError as e:
            raise ConfigError(f"model 'multimodal': {e}") from None
        for modality, path in (("params", o.init_params), ("cube", o.init_cube)):
            if path:
                if modality not in o.modalities:
                    raise ConfigError(f"model.multimodal.init_{modality} is set but {modality} is not among the modalities")
                _init_from(model, path, modality)
        meta = {"store": dict(self.identity), "targets": TARGETS, "lowest_level": lowest,
                "params": [p.name for p in store.params], "cube_variables": list(o.cube_variables),
                "target_mean": self.y_mean.tolist(), "target_std": self.y_std.tolist(), **hardware}
        module = FusionModule(model, cfg, meta=meta)
        world = cfg.trainer.devices * cfg.trainer.num_nodes
        per_rank = len(BatchIndexSampler(self.splits["train"], cfg.data.batch_size, num_replicas=world))
        return _DataModule(self.dataset, self.splits, cfg.data.batch_size, cfg.trainer.seed), module, per_rank

    @torch.no_grad()
    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> dict[str, Any]:
        model = module.model.eval()
        heads = model.heads
        evaluation: dict[str, Any] = {}
        for split in [s for s in ("val", "test") if s in self.splits]:
            idx = self.splits[split]
            b = self.dataset[idx]
            preds = model(b["params"].to(module.device), b["cube"].to(module.device))
            truth = self.y[idx]
            guesses = {"baseline": np.broadcast_to(self.y_mean, truth.shape)}
            guesses.update({h: preds[h].double().cpu().numpy() * self.y_std + self.y_mean for h in heads})
            res: dict[str, Any] = {"n_samples": int(len(idx)), "targets": {}, "standardized": {}}
            for j, (t, unit) in enumerate(TARGETS.items()):
                res["targets"][t] = {k: float(np.sqrt(np.mean((g[:, j] - truth[:, j]) ** 2))) for k, g in guesses.items()}
            for k, g in guesses.items():
                res["standardized"][k] = float(np.sqrt(np.mean(((g - truth) / self.y_std) ** 2)))
            if "fusion" in heads:
                res["fusion_beats"] = {m: res["standardized"]["fusion"] < res["standardized"][m] for m in ("params", "cube")}
            evaluation[split] = res
        held_out = "test" if "test" in evaluation else "val"
        return {"held_out_split": held_out, "metric": "rmse", "baseline": "train mean", "heads": heads,
                "targets": TARGETS, "evaluation": evaluation}

    def table(self, summary: dict[str, Any]) -> str:
        from ..report import _fmt, rows_table

        heads = summary["heads"]
        label = {"params": "params only", "cube": "cube only", "fusion": "fusion"}
        rows = [("split", "target", "train mean", *(label[h] for h in heads))]
        for split, res in summary["evaluation"].items():
            first = True
            for t, unit in [*summary["targets"].items(), ("standardized", "mean over targets")]:
                vals = res["standardized"] if t == "standardized" else res["targets"][t]
                rows.append((f"{split} ({res['n_samples']})" if first else "", f"{t} [{unit}]",
                             *(_fmt(vals[k]) for k in ("baseline", *heads))))
                first = False
        head = (f"run {summary['run_dir']}: multimodal ({' + '.join(heads)}) RMSE on held-out planets; best epoch "
                f"{summary['best_epoch']} of {summary['epochs_run']}; {summary['wall_time_s']:.0f} s; precision {summary['precision']}")
        beats = summary["evaluation"][summary["held_out_split"]].get("fusion_beats")
        tail = ""
        if beats is not None:
            tail = "\n" + f"fusion beats params only on {summary['held_out_split']}: {'yes' if beats['params'] else 'no'}; " \
                          f"beats cube only: {'yes' if beats['cube'] else 'no'}"
        return rows_table(head, rows) + tail

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        """(metric, model, baseline, baseline value) rows for the --mode full table."""
        from ..report import _fmt

        split = summary["held_out_split"]
        res = summary["evaluation"][split]["standardized"]
        label = {"params": "params only", "cube": "cube only", "fusion": "fusion"}
        return [(f"{split} RMSE [standardized], {label[h]}", _fmt(res[h]), "train mean", _fmt(res["baseline"]))
                for h in reversed(summary["heads"])]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], module: Any, run_dir: Path) -> dict[str, str]:
        from ..report import plot_metric_curves

        base = summary["evaluation"]["val"]["standardized"]["baseline"]
        return {"loss_curves": str(plot_metric_curves(module.history, run_dir / "loss_curves.png", metric="val_rmse",
                                                      label=f"val RMSE ({summary['heads'][-1]}, standardized)",
                                                      baseline=base, baseline_label="train mean"))}
