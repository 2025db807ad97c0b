"""The climate store as training data: opening and checking it, the normalization statistics to
return to physical units, the climatology baseline, and a LightningDataModule (split by run,
one native call per batch, DDP sharding by the sampler, a stateful train loader for mid-epoch
resume). The multimodal task opens its store with `open_climate_store` too."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from ....data import BatchIndexSampler, CubeBatchDataset, make_loader
from ....datasets import default_part, part_path
from ....errors import ConfigError, DataNotFoundError
from ....reader import CubeReader, Normalization
from ....stores.splits import complete_split, split_problem
from ....stores.cube import CubeStore, open_cube
from ...config import DataConfig, TrainConfig
from ...guards import preflight

__all__ = ["Normalization", "store_normalization", "StoreDataModule", "climatology", "open_climate_store", "default_climate_store",
           "param_columns", "resolve_split"]


def store_normalization(store: CubeStore, mode: str) -> Normalization:
    """The normalization the Rust core applies to this store's cubes in `mode` (physical =
    normalized * scale + mean, [V, L]); the zero-std rule lives in the core alone."""
    if mode not in ("per_variable", "per_level"):
        raise ConfigError(f"unknown normalization {mode!r}")
    return CubeReader(store.path, normalize=mode).normalization()


def open_climate_store(cfg: TrainConfig) -> CubeStore:
    """`data.location`, else the default dataset's climate part; train and val must be non-empty.
    With `data.verify`, the full integrity scan and digest check run first. Sets `data.location`
    to the resolved path (saved in the run's config; the runner records its identity)."""
    store = open_cube(cfg.data.location) if cfg.data.location else open_cube(default_climate_store())
    if (store.manifest.get("provenance") or {}).get("untouched"):  # issue 27: evaluated once, never trained on
        raise ConfigError(f"store {store.path} is the untouched evaluation set: never trained or early-stopped on; "
                          "score a run on it with astrobio evaluate RUN --store PATH")
    resolve_split(store, cfg.data.split)  # unknown runs, overlaps, an empty train or val: ConfigError / DataNotFoundError
    if cfg.data.verify:
        preflight(store)  # every chunk and the digests, before anything trains
    cfg.data.location = str(store.path.resolve()) if isinstance(store.path, Path) else store.path
    return store


def default_climate_store(wait_s: float = 1800.0) -> Path:
    """The default climate store, built (or confirmed up to date) by local rank 0 only: under
    torchrun the other processes of a node wait for it instead of racing to build it too."""
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        return default_part("climate")
    path = part_path("climate")
    deadline = time.monotonic() + wait_s
    while True:
        if (path / "zarr.json").is_file():
            try:
                open_cube(path)
                return path
            except (DataNotFoundError, OSError):
                pass
        if time.monotonic() > deadline:
            raise DataNotFoundError(f"local rank 0 did not finish building the default climate store in {wait_s:.0f} s",
                                    path=str(path), hint="Build it first: astrobio datasets build default --parts climate")
        time.sleep(2.0)


def resolve_split(store: CubeStore, override: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """Runs per split: `data.split` when set (every run named must exist, no run in two splits),
    else the store's own; train and val must not be empty."""
    if override is None:
        for name in ("train", "val"):
            store.samples(name)  # unknown or empty split: ConfigError / DataNotFoundError
        return {k: list(v) for k, v in store.split.items()}
    problem = split_problem(override, [r.id for r in store.runs])  # the stores' one split rule
    if problem:
        raise ConfigError(f"data.split: {problem}")
    split = complete_split(override)
    for name in ("train", "val"):
        if not split[name]:
            raise DataNotFoundError(f"data.split leaves {name!r} without runs", path=str(store.path),
                                    hint="Name at least one run for train and for val")
    return split


def param_columns(store: CubeStore, names: list[str] | None) -> list[int] | None:
    """The store's parameter columns named by `data.params` (None: all of them)."""
    if not store.params:
        raise ConfigError(f"{store.path} has no parameter table; the emulator maps parameters to cubes")
    all_names = [p.name for p in store.params]
    if names is None:
        return None
    unknown = [n for n in names if n not in all_names]
    if unknown or not names:
        raise ConfigError(f"data.params names {unknown or 'nothing'}; the store's parameters are {all_names}")
    return [all_names.index(n) for n in names]


def climatology(store: CubeStore, indices: np.ndarray, normalize: str, batch_size: int = 32) -> np.ndarray:
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

    def __init__(self, store: CubeStore, cfg: DataConfig, seed: int) -> None:
        super().__init__()
        self.store = store
        self.cfg = cfg
        self.seed = seed
        self.split = resolve_split(store, cfg.split)
        self.train_indices = store.run_samples(self.split["train"])
        self.val_indices = store.run_samples(self.split["val"])
        self.test_indices = store.run_samples(self.split.get("test") or [])

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _dataset(self, dtype: str = "float32") -> CubeBatchDataset:
        return CubeBatchDataset(self.store.path, normalize=self.cfg.normalize, threads=self.cfg.threads, dtype=dtype)

    def batches_per_epoch(self, world: int) -> int:
        """Training batches per epoch on each of `world` ranks."""
        return len(BatchIndexSampler(self.train_indices, self.cfg.batch_size, num_replicas=world))

    def shuffle_block(self, dataset: CubeBatchDataset) -> int:
        """`data.shuffle_block`, or the shard size of the store `dataset` reads (1 when it is not
        sharded)."""
        if self.cfg.shuffle_block is not None:
            return self.cfg.shuffle_block
        return dataset.reader.shard_samples or 1

    def train_dataloader(self) -> Any:
        rank, world = self._rank()
        dataset = self._dataset(self.cfg.batch_dtype)  # validation stays float32: its metrics are exact
        sampler = BatchIndexSampler(self.train_indices, self.cfg.batch_size, shuffle=True, seed=self.seed,
                                    num_replicas=world, rank=rank, pad=True, shuffle_block=self.shuffle_block(dataset))
        return make_loader(dataset, sampler, num_workers=self.cfg.num_workers, timeout=self.cfg.timeout, stateful=True,
                           depth=self.cfg.readahead_depth)

    def val_dataloader(self) -> Any:
        rank, world = self._rank()
        sampler = BatchIndexSampler(self.val_indices, self.cfg.batch_size, num_replicas=world, rank=rank, pad=False)
        return make_loader(self._dataset(), sampler, num_workers=self.cfg.num_workers, timeout=self.cfg.timeout,
                           depth=self.cfg.readahead_depth)
