"""The multimodal task's data: the surface targets derived from the lowest-level temperature,
the whole (small) climate store in memory with the train-standardized targets, and the
LightningDataModule over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch

from ....data import BatchIndexSampler, make_loader
from ....errors import ConfigError, IntegrityError
from ....reader import CubeReader
from ....stores.cube import Store
from ..datacube.data import store_normalization
from .options import MultimodalOptions

__all__ = ["TARGETS", "InMemorySamples", "MultimodalDataModule", "Samples", "check_variables", "load_samples",
           "surface_targets"]

#: target name -> unit
TARGETS = {"t_surface": "K", "liquid_fraction": "1"}
FREEZE_K, BOIL_K = 273.15, 373.15


def surface_targets(ta_lowest: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """[N, 2] (t_surface, liquid_fraction) from the lowest-level temperature [N, H, W] in K."""
    w = np.cos(np.deg2rad(np.asarray(lat_deg, float)))[None, :, None] * np.ones_like(ta_lowest)
    w = w / w.sum(axis=(1, 2), keepdims=True)
    liquid = (ta_lowest >= FREEZE_K) & (ta_lowest <= BOIL_K)
    return np.stack([(w * ta_lowest).sum(axis=(1, 2)), (w * liquid).sum(axis=(1, 2))], axis=1)


class InMemorySamples(torch.utils.data.Dataset):
    """The whole (small) store in memory; a sampler's batch of indices -> one batch dict."""

    def __init__(self, params: np.ndarray, cube: np.ndarray, y: np.ndarray) -> None:
        self.params, self.cube, self.y = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in (params, cube, y))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, indices: Any) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return {"params": self.params[idx], "cube": self.cube[idx], "y": self.y[idx], "index": idx}


class MultimodalDataModule(L.LightningDataModule):
    """Train (shuffled by (seed, epoch), padded per DDP rank, resumable) and val loaders over
    the in-memory samples."""

    def __init__(self, dataset: InMemorySamples, splits: dict[str, np.ndarray], batch_size: int, seed: int) -> None:
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


def check_variables(store: Store, options: MultimodalOptions) -> None:
    """The store has `ta` (the targets' source) and the cube variables, which must not include it."""
    names = [v.name for v in store.variables]
    if "ta" not in names:
        raise ConfigError(f"--model multimodal derives its targets from ta; {store.path} has {names}")
    if "ta" in options.cube_variables:
        raise ConfigError("model.options.cube_variables must not include ta: the targets are computed from it")
    unknown = [v for v in options.cube_variables if v not in names]
    if unknown or not options.cube_variables:
        raise ConfigError(f"model.options.cube_variables names {unknown or 'nothing'}; the store has {names}")


@dataclass
class Samples:
    """Every sample of the store: targets `y` in physical units [N, 2], their train mean and
    std (zero std -> 1), the standardized dataset, the splits and the lowest level's index."""

    y: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    dataset: InMemorySamples
    splits: dict[str, np.ndarray]
    lowest: int
    n_params: int
    cube_shape: tuple[int, ...]


def load_samples(store: Store, options: MultimodalOptions) -> Samples:
    """Read the whole store and derive the targets (the store is small: a few hundred planet-months)."""
    names = [v.name for v in store.variables]
    level = store.manifest.get("coords", {}).get("level", {}).get("values")
    lat = store.manifest.get("coords", {}).get("lat", {}).get("values")
    if not lat or len(lat) != store.sample_shape[2]:
        raise IntegrityError("the store has no latitude coordinate (coords.lat) for the area weights", path=str(store.path))
    lowest = int(np.argmax(level)) if level and len(level) == store.sample_shape[1] else 0
    batch = CubeReader(store.path, normalize="per_variable").read(np.arange(store.n_samples))
    norm = store_normalization(store, "per_variable")
    ta = names.index("ta")
    ta_k = batch.cubes[:, ta, lowest].astype(np.float64) * norm.scale[ta, lowest] + norm.mean[ta, lowest]
    y = surface_targets(ta_k, np.asarray(lat))
    splits = {s: store.samples(s) for s in ("train", "val")}
    if store.split.get("test"):
        splits["test"] = store.samples("test")
    y_mean = y[splits["train"]].mean(axis=0)
    std = y[splits["train"]].std(axis=0)
    y_std = np.where(std > 0, std, 1.0)
    cube = batch.cubes[:, [names.index(v) for v in options.cube_variables]]
    dataset = InMemorySamples(batch.params, cube, (y - y_mean) / y_std)
    return Samples(y, y_mean, y_std, dataset, splits, lowest, batch.params.shape[1], cube.shape[1:])
