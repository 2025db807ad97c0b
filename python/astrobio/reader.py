"""Python-side batch access: a picklable reader that opens the native core lazily in each
process, so torch DataLoader workers (fork or spawn) each get their own handle and pool."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ._native import core
from .errors import ConfigError
from .stores.location import store_location

if TYPE_CHECKING:
    from ._core import BatchReader

__all__ = ["Batch", "CubeReader", "Normalization"]


@dataclass(frozen=True)
class Batch:
    """One batch: `cubes` [B, V, L, H, W] and `params` [B, P], float32, normalized,
    C-contiguous (zero-copy into torch via `torch.from_numpy`)."""

    indices: np.ndarray
    cubes: np.ndarray
    params: np.ndarray


@dataclass(frozen=True)
class Normalization:
    """The normalization a reader applies: physical = normalized * scale + mean (float64).

    `mean` and `scale` are [V, L] for cubes (`CubeReader.normalization()`) or [P] for the
    parameters (`CubeReader.params_normalization()`). They come from the Rust core, the same
    numbers its kernel normalizes with (a zero standard deviation is scale 1: centred, not
    scaled), so Python never re-derives the rule.
    """

    mean: np.ndarray
    scale: np.ndarray

    def to_physical(self, x: np.ndarray) -> np.ndarray:
        """Normalized -> physical units: cubes [..., V, L, H, W], parameters [..., P]."""
        if self.mean.ndim == 2:  # cube statistics broadcast over the grid (H, W)
            return x * self.scale[:, :, None, None] + self.mean[:, :, None, None]
        return x * self.scale + self.mean


def _in_dataloader_worker() -> bool:
    """Whether this process is a torch DataLoader worker. A worker has torch imported already;
    the reader itself does not need torch, so it does not import it."""
    data = sys.modules.get("torch.utils.data")
    return data is not None and data.get_worker_info() is not None


class CubeReader:
    """Reads normalized batches from a store (a directory or an `s3://bucket/prefix` URL) with
    one native call per batch.

    Holds only the path and options; the native reader is opened on first use in each
    process. Inside a DataLoader worker the default thread count is 1 (the workers are the
    parallelism); in the main process it is every available core.
    """

    def __init__(self, path: str | Path, normalize: str = "per_variable", threads: int | None = None) -> None:
        self.path = store_location(path)
        self.normalize = normalize
        self.threads = threads
        self._native: BatchReader | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "normalize": self.normalize, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["normalize"], state["threads"])  # type: ignore[misc]

    @property
    def native(self) -> BatchReader:
        """The process-local `astrobio._core.BatchReader` (reopened after fork)."""
        if self._native is None or self._pid != os.getpid():
            # on first use (`astrobio._native`): `import astrobio` works, and validate reports, without it
            self._native = core().BatchReader(str(self.path), self.normalize, self._threads())
            self._pid = os.getpid()
        return self._native

    def _threads(self) -> int:
        if self.threads is not None:
            return self.threads
        return 1 if _in_dataloader_worker() else 0

    def __len__(self) -> int:
        return int(self.native.n_samples)

    @property
    def sample_shape(self) -> tuple[int, int, int, int]:
        return tuple(self.native.sample_shape)  # type: ignore[return-value]

    @property
    def shard_samples(self) -> int | None:
        """Samples per shard of a sharded store (consecutive samples in one object); None: one
        object per sample."""
        return self.native.shard_samples

    def normalization(self) -> Normalization:
        """The cube normalization this reader applies (mean, scale [V, L], float64)."""
        mean, scale = self.native.normalization()
        return Normalization(mean=mean, scale=scale)

    def params_normalization(self) -> Normalization:
        """The parameter normalization this reader applies (mean, scale [P], float64)."""
        mean, scale = self.native.params_normalization()
        return Normalization(mean=mean, scale=scale)

    def prefetch(self, indices: Sequence[int] | np.ndarray) -> bool:
        """Read ahead: start fetching this batch's chunk objects in the background (s3:// stores;
        one batch, within `ASTROBIO_S3_READAHEAD_MB`). False when nothing started (local store)."""
        return bool(self.native.prefetch(np.asarray(indices, dtype=np.int64).reshape(-1).tolist()))

    def read(self, indices: Sequence[int] | np.ndarray, out: np.ndarray | None = None, *,
             dtype: str = "float32") -> Batch:
        """Read one batch. `out` (C-contiguous [B, V, L, H, W], e.g. a pinned torch tensor's
        `.numpy()`) is filled in place when given. `dtype="bfloat16"`: the core narrows each
        normalized sample to bfloat16 (round to nearest even) and `cubes` holds the bits as
        uint16 (`torch.from_numpy(cubes).view(torch.bfloat16)`); half the bytes of float32."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        as_list = idx.tolist()
        if dtype == "float32":
            cubes = self.native.read_batch(as_list, out)
        elif dtype == "bfloat16":
            cubes = self.native.read_batch_bf16(as_list, out)
        else:
            raise ConfigError(f"dtype must be float32 or bfloat16, not {dtype!r}")
        params = self.native.read_params(as_list)
        return Batch(indices=idx, cubes=cubes, params=params)
