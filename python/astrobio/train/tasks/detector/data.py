"""Observation patches as torch data: one Rust-core call per batch (`CubeReader`: verified,
normalized with the store's robust per-channel statistics, collated into one array), the split
of the observation store (by sky cell and object, fixed before training), and labels from its
columns."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from ....reader import CubeReader
from ....stores.observation import ObservationStore
from ...rng import epoch_seed

__all__ = ["PatchBatches", "EpochBatches", "PatchDataModule"]


class PatchBatches(Dataset):
    """Item = one whole batch: `__getitem__(indices)` reads those patches in one core call."""

    def __init__(self, store: ObservationStore, samples: np.ndarray, normalize: str = "per_variable") -> None:
        self.reader = CubeReader(store.patches_path, normalize=normalize)
        self.samples = np.asarray(samples, np.int64)
        self.labels = store.columns["label"].to_numpy(np.float32)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        idx = self.samples[np.asarray(positions, np.int64)]
        cubes = self.reader.read(idx).cubes  # [B, C, 1, H, W]
        return {"x": torch.from_numpy(cubes[:, :, 0]), "y": torch.from_numpy(self.labels[idx]),
                "index": torch.from_numpy(idx)}


class EpochBatches(Sampler):
    """Batches of positions in an order drawn from (seed, epoch) only (exact on resume)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Any:
        g = torch.Generator()
        g.manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.n, generator=g).tolist()
        return iter(order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size))


class PatchDataModule(L.LightningDataModule):
    """Train (shuffled by (seed, epoch)) and val loaders over an observation store's split."""

    def __init__(self, store: ObservationStore, *, batch_size: int, seed: int, num_workers: int = 0) -> None:
        super().__init__()
        self.store, self.batch_size, self.seed, self.num_workers = store, batch_size, seed, num_workers

    def dataset(self, split: str) -> PatchBatches:
        return PatchBatches(self.store, self.store.samples(split))

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train")
        return DataLoader(ds, batch_size=None, sampler=EpochBatches(len(ds), self.batch_size, self.seed),
                          num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return loader(self.dataset("val"), 256, self.num_workers)


def loader(ds: PatchBatches, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Batches in store order (evaluation)."""
    return DataLoader(ds, batch_size=None, sampler=BatchSampler(SequentialSampler(range(len(ds))), batch_size, False),
                      num_workers=num_workers)
