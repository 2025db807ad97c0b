"""torch integration: a Dataset whose items are whole batches, so each batch is ONE native
call (decode + verify + normalize + collate in Rust), and a DataLoader built around it.

The DataLoader is used with `batch_size=None`: the sampler yields lists of indices and the
dataset returns ready tensors, so torch's per-sample collation never runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .errors import ConfigError
from .reader import CubeReader

__all__ = ["CubeBatchDataset", "BatchIndexSampler", "make_loader"]


class CubeBatchDataset(Dataset):
    """Map-style dataset indexed by a list of sample indices; returns one collated batch:
    {"cubes": [B, V, L, H, W], "params": [B, P], "index": [B]} as torch tensors (zero-copy)."""

    def __init__(self, path: str | Path, normalize: str = "per_variable", threads: int | None = None) -> None:
        self.reader = CubeReader(path, normalize=normalize, threads=threads)

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = self.reader.read(indices)
        return {
            "cubes": torch.from_numpy(batch.cubes),
            "params": torch.from_numpy(batch.params),
            "index": torch.from_numpy(batch.indices),
        }


class BatchIndexSampler(Sampler[list[int]]):
    """Yields batches (lists) of the given sample indices, shuffled per epoch with a seed."""

    def __init__(self, indices: Sequence[int] | np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, not {batch_size}")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.indices
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))  # real-data-ok: seeded shuffle of real sample indices
            order = order[rng.permutation(len(order))]
        for i in range(len(self)):
            yield order[i * self.batch_size : (i + 1) * self.batch_size].tolist()


def make_loader(dataset: CubeBatchDataset, sampler: BatchIndexSampler, *, num_workers: int = 0,
                multiprocessing_context: str | None = None, pin_memory: bool | None = None,
                timeout: float = 0.0, **kwargs: Any) -> DataLoader:
    """A DataLoader that asks the dataset for whole batches. Pinned memory is on by default
    when CUDA is present."""
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers,
        multiprocessing_context=multiprocessing_context if num_workers > 0 else None,
        pin_memory=pin_memory, timeout=timeout if num_workers > 0 else 0.0,
        persistent_workers=False, **kwargs,
    )
