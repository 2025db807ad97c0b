"""The store as a LightningDataModule: split by run (the store's split), one native call per
batch, DDP sharding by the sampler, a stateful train loader (mid-epoch resume), and the
normalization statistics needed to return to physical units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np

from ..data import BatchIndexSampler, CubeBatchDataset, make_loader
from ..errors import ConfigError, IntegrityError
from ..reader import CubeReader
from ..store import Store
from .config import DataConfig

__all__ = ["Normalization", "StoreDataModule", "climatology"]


@dataclass(frozen=True)
class Normalization:
    """physical = normalized * scale + mean, with mean/scale [V, L] (float64). A zero standard
    deviation is 'centred, not scaled' (scale 1), the reader's documented rule."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_store(cls, store: Store, mode: str) -> "Normalization":
        v, lv = store.sample_shape[:2]
        cubes = store.manifest["normalization"]["cubes"]
        if mode == "per_variable":
            mean = np.repeat(np.asarray(cubes["per_variable"]["mean"], float)[:, None], lv, axis=1)
            std = np.repeat(np.asarray(cubes["per_variable"]["std"], float)[:, None], lv, axis=1)
        elif mode == "per_level":
            mean = np.asarray(cubes["per_level"]["mean"], float)
            std = np.asarray(cubes["per_level"]["std"], float)
        else:
            raise ConfigError(f"unknown normalization {mode!r}")
        if mean.shape != (v, lv) or std.shape != (v, lv):
            raise IntegrityError(f"normalization statistics have shape {mean.shape}, expected {(v, lv)}", path=str(store.path))
        return cls(mean=mean, scale=np.where(std > 0, std, 1.0))

    def to_physical(self, x: np.ndarray) -> np.ndarray:
        """[..., V, L, H, W] normalized -> physical units."""
        return x * self.scale[:, :, None, None] + self.mean[:, :, None, None]


def climatology(store: Store, indices: np.ndarray, normalize: str, batch_size: int = 32) -> np.ndarray:
    """The mean normalized cube [V, L, H, W] over `indices` (float64 accumulation): the baseline."""
    reader = CubeReader(store.path, normalize=normalize)
    total = np.zeros(store.sample_shape, dtype=np.float64)
    for start in range(0, len(indices), batch_size):
        total += reader.read(indices[start : start + batch_size]).cubes.sum(axis=0, dtype=np.float64)
    return total / max(1, len(indices))


class StoreDataModule(L.LightningDataModule):
    """Train / val loaders over one store's split. The training sampler shuffles with
    (seed, epoch), pads so every DDP rank gets the same number of batches, and is resumable;
    validation is unshuffled and sharded without padding (metrics are reduced exactly)."""

    def __init__(self, store: Store, cfg: DataConfig, seed: int) -> None:
        super().__init__()
        self.store = store
        self.cfg = cfg
        self.seed = seed
        self.train_indices = store.samples("train")
        self.val_indices = store.samples("val")
        test = store.split.get("test") or []
        self.test_indices = store.samples("test") if test else np.zeros(0, np.int64)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _dataset(self) -> CubeBatchDataset:
        return CubeBatchDataset(self.store.path, normalize=self.cfg.normalize, threads=self.cfg.threads)

    def train_dataloader(self) -> Any:
        rank, world = self._rank()
        sampler = BatchIndexSampler(self.train_indices, self.cfg.batch_size, shuffle=True, seed=self.seed,
                                    num_replicas=world, rank=rank, pad=True)
        return make_loader(self._dataset(), sampler, num_workers=self.cfg.num_workers, timeout=self.cfg.timeout, stateful=True)

    def val_dataloader(self) -> Any:
        rank, world = self._rank()
        sampler = BatchIndexSampler(self.val_indices, self.cfg.batch_size, num_replicas=world, rank=rank, pad=False)
        return make_loader(self._dataset(), sampler, num_workers=self.cfg.num_workers, timeout=self.cfg.timeout)
