"""The verified data store: open, inspect and verify astrobio stores (zarr v3 groups).

The format is in docs/store-format.md. Writing lives in `StoreWriter` / `write_store`.
Opening validates the manifest and array metadata through the Rust core, so a store that
opens is one the loader can read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._fsutil import tree_digest
from ._writer import FORMAT, FORMAT_VERSION, StoreWriter, Variable, content_digest, write_store
from .errors import ConfigError, DataNotFoundError, IntegrityError

__all__ = ["Run", "Store", "open_store", "StoreWriter", "Variable", "write_store", "FORMAT", "FORMAT_VERSION"]


@dataclass(frozen=True)
class Run:
    """One simulation or observation run: samples [start, start + count) of the store."""

    id: str
    start: int
    count: int
    attrs: Mapping[str, Any]

    @property
    def samples(self) -> range:
        return range(self.start, self.start + self.count)


class Store:
    """An opened store. Use `open_store(path)`."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.runs = [Run(r["id"], int(r["start"]), int(r["count"]), r.get("attrs", {})) for r in manifest["runs"]]
        self._by_id = {r.id: r for r in self.runs}

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, runs={len(self.runs)}, samples={self.n_samples}, sample_shape={self.sample_shape})"

    @property
    def n_samples(self) -> int:
        return int(self.manifest["n_samples"])

    @property
    def sample_shape(self) -> tuple[int, int, int, int]:
        v, lv, h, w = self.manifest["sample_shape"]
        return (v, lv, h, w)

    @property
    def variables(self) -> list[Variable]:
        return [_variable(v) for v in self.manifest["variables"]]

    @property
    def params(self) -> list[Variable]:
        return [_variable(p) for p in self.manifest.get("params", [])]

    @property
    def split(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.manifest["split"].items()}

    def run(self, run_id: str) -> Run:
        try:
            return self._by_id[run_id]
        except KeyError:
            raise ConfigError(f"no run {run_id!r} in store {self.path}") from None

    def samples(self, split: str) -> np.ndarray:
        """Sample indices of every run in `split` ('train', 'val' or 'test'), in order.

        An empty split is an error: training or evaluating on nothing is never what was meant.
        """
        if split not in self.manifest["split"]:
            raise ConfigError(f"unknown split {split!r}; the store has {sorted(self.manifest['split'])}")
        runs = [self.run(r) for r in self.manifest["split"][split]]
        if not runs:
            raise DataNotFoundError(
                f"split {split!r} of the store has no runs", path=str(self.path),
                hint="Rebuild the store with runs assigned to that split (StoreWriter.commit(split=...))",
            )
        return np.concatenate([np.arange(r.start, r.start + r.count, dtype=np.int64) for r in runs])

    def reader(self, normalize: str = "per_variable", threads: int = 0) -> Any:
        """A native `astrobio._core.BatchReader` over this store."""
        from ._core import BatchReader

        return BatchReader(str(self.path), normalize, threads)

    def verify(self, max_failures: int = 20, threads: int = 0) -> dict[str, Any]:
        """Scan every chunk (checksums, sizes, NaN/Inf, ranges, stray files); returns a report."""
        from ._core import verify_store

        report = verify_store(str(self.path), max_failures, threads)
        return dict(report)

    def verify_digest(self) -> None:
        """Recompute the content digest from the data; IntegrityError if it differs from the
        manifest's (data changed after writing, or a manifest copied from another store)."""
        m = self.manifest
        digests = m.get("digests")
        if not isinstance(digests, dict) or not digests:
            raise IntegrityError("manifest records no array digests, so its data cannot be checked", path=str(self.path))
        for name, recorded in digests.items():
            if name not in ("cubes", "params"):  # a manifest never leads the reader outside its arrays
                raise IntegrityError(f"manifest lists a digest for {name!r}, which is not an array of the store", path=str(self.path))
            actual = tree_digest(self.path / name)
            if actual != recorded:
                raise IntegrityError(f"array {name!r} digest is {actual}, the manifest records {recorded}", path=str(self.path))
        if content_digest(m) != m.get("content_digest"):
            raise IntegrityError("manifest content digest does not match its contents", path=str(self.path))


def _variable(d: Mapping[str, Any]) -> Variable:
    lo, hi = d.get("valid_range") or (None, None)
    return Variable(name=d["name"], units=d.get("units", ""), valid_range=(lo, hi), long_name=d.get("long_name", ""))


def open_store(path: str | Path) -> Store:
    """Open the store at `path`, checking that it is complete and consistent.

    Raises DataNotFoundError (missing or incompletely written store, with the command that
    builds it) or IntegrityError (inconsistent manifest or array metadata).
    """
    from ._core import BatchReader

    root = Path(path)
    # The core checks existence, completeness, manifest consistency, dtypes, shapes, chunking
    # and the parameter table; one source of truth for what a valid store is.
    BatchReader(str(root), "none", 1)
    meta = json.loads((root / "zarr.json").read_text())
    manifest = meta["attributes"]["astrobio"]
    # fields the core does not need to read, but without which the store cannot be checked or described
    missing = [k for k in ("stats", "digests", "content_digest") if k not in manifest]
    if missing:
        raise IntegrityError(f"manifest: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}", path=str(root))
    _check_split(manifest, root)
    return Store(root, manifest)


def _check_split(manifest: dict[str, Any], root: Path) -> None:
    """The split section (which the core does not read): {train|val|test: [run ids of this store]},
    a run in at most one split. Anything else is an IntegrityError, not a KeyError/TypeError later."""
    split = manifest.get("split")
    if not isinstance(split, dict):
        raise IntegrityError(f"manifest: split must map train/val/test to run ids, got {type(split).__name__}", path=str(root))
    ids = {r["id"] for r in manifest["runs"]}
    seen: dict[str, str] = {}
    for name, runs in split.items():
        if name not in ("train", "val", "test"):
            raise IntegrityError(f"manifest: unknown split {name!r} (splits are train, val and test)", path=str(root))
        if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
            raise IntegrityError(f"manifest: split {name!r} must be a list of run ids", path=str(root))
        for r in runs:
            if r not in ids:
                raise IntegrityError(f"manifest: split {name!r} names run {r!r}, which is not in the store", path=str(root))
            if r in seen:
                raise IntegrityError(f"manifest: run {r!r} is in both the {seen[r]!r} and {name!r} splits", path=str(root))
            seen[r] = name
