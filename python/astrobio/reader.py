"""Python-side batch access: a picklable reader that opens the native core lazily in each
process, so torch DataLoader workers (fork or spawn) each get their own handle and pool."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["Batch", "CubeReader"]


@dataclass(frozen=True)
class Batch:
    """One batch: `cubes` [B, V, L, H, W] and `params` [B, P], float32, normalized,
    C-contiguous (zero-copy into torch via `torch.from_numpy`)."""

    indices: np.ndarray
    cubes: np.ndarray
    params: np.ndarray


class CubeReader:
    """Reads normalized batches from a store with one native call per batch.

    Holds only the path and options; the native reader is opened on first use in each
    process. Inside a DataLoader worker the default thread count is 1 (the workers are the
    parallelism); in the main process it is every available core.
    """

    def __init__(self, path: str | Path, normalize: str = "per_variable", threads: int | None = None) -> None:
        self.path = Path(path)
        self.normalize = normalize
        self.threads = threads
        self._native: Any = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "normalize": self.normalize, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["normalize"], state["threads"])  # type: ignore[misc]

    @property
    def native(self) -> Any:
        """The process-local `astrobio._core.BatchReader` (reopened after fork)."""
        if self._native is None or self._pid != os.getpid():
            from ._core import BatchReader

            self._native = BatchReader(str(self.path), self.normalize, self._threads())
            self._pid = os.getpid()
        return self._native

    def _threads(self) -> int:
        if self.threads is not None:
            return self.threads
        try:
            from torch.utils.data import get_worker_info
        except ImportError:  # torch is a dependency, but the reader does not need it
            return 0
        return 1 if get_worker_info() is not None else 0

    def __len__(self) -> int:
        return int(self.native.n_samples)

    @property
    def sample_shape(self) -> tuple[int, int, int, int]:
        return tuple(self.native.sample_shape)  # type: ignore[return-value]

    def read(self, indices: Sequence[int] | np.ndarray, out: np.ndarray | None = None) -> Batch:
        """Read one batch. `out` (C-contiguous float32 [B, V, L, H, W], e.g. a pinned torch
        tensor's `.numpy()`) is filled in place when given."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        as_list = idx.tolist()
        cubes = self.native.read_batch(as_list, out)
        params = self.native.read_params(as_list)
        return Batch(indices=idx, cubes=cubes, params=params)
