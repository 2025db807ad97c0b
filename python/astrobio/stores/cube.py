"""Cube stores (format "astrobio.store"): [N, V, L, H, W] float32 samples grouped in runs, with
parameters, statistics, a split by run and normalization in the manifest.

The format is in docs/store-format.md; writing lives in `stores.cube_writer`. Opening validates
the manifest and array metadata through the Rust core, so a store that opens is one the loader
can read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataNotFoundError, IntegrityError
from ._group import check_digests, content_digest, read_group_manifest
from ._remote import store_location

__all__ = ["FORMAT", "FORMAT_VERSION", "ARRAYS", "UNDIGESTED", "SPLITS", "Variable", "Run", "Store", "open_store",
           "digest"]

FORMAT = "astrobio.store"
FORMAT_VERSION = 1
#: The arrays of a cube store (`params` only when the store has parameters).
ARRAYS = ("cubes", "params")
#: Manifest fields the content digest leaves out: fixed dimension names, coordinates and the
#: statistics (derived from the arrays, whose digests are covered).
UNDIGESTED = ("dims", "coords", "stats")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Variable:
    """A cube variable or scalar parameter, with units and its physical valid range
    (inclusive; None leaves that side open). `range_source` says where an ingested range came
    from ("cli", "api", "cf-default:<standard_name>", "name-default:<name>", "none"); None (not
    recorded) for variables declared in code."""

    name: str
    units: str
    valid_range: tuple[float | None, float | None] = (None, None)
    long_name: str = ""
    range_source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest entry (`range_source` only when recorded, so earlier manifests and their
        digests are unchanged)."""
        d: dict[str, Any] = {"name": self.name, "units": self.units, "valid_range": list(self.valid_range),
                             "long_name": self.long_name}
        if self.range_source is not None:
            d["range_source"] = self.range_source
        return d

    def check(self, values: np.ndarray) -> tuple[int, float, str] | None:
        """First offending flat index, its value and why; None when all values are valid."""
        lo, hi = self.valid_range
        bad = ~np.isfinite(values)
        if lo is not None:
            bad |= values < lo
        if hi is not None:
            bad |= values > hi
        if not bad.any():
            return None
        i = int(np.flatnonzero(bad)[0])
        x = float(values.flat[i])
        why = "not a number" if np.isnan(x) else "infinite" if np.isinf(x) else f"outside the valid range [{lo}, {hi}]"
        return i, x, why


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


def _core() -> Any:
    """The native module, imported on first use: `import astrobio` (and `astrobio validate`, which
    reports a broken native module as a failed component) must work without it."""
    from .. import _core as core

    return core


def digest(manifest: Mapping[str, Any]) -> str:
    """The content digest of a cube manifest (the one rule of `stores._group.content_digest`)."""
    return content_digest(manifest, UNDIGESTED)


class Store:
    """An opened store. Use `open_store(path)`. `path` is a `Path`, or the URL string of a
    store in object storage."""

    def __init__(self, path: Path | str, manifest: dict[str, Any]) -> None:
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

    def run_of(self, sample: int) -> Run:
        """The run that sample index `sample` belongs to (ConfigError when none does)."""
        return self.runs[int(self.run_positions([sample])[0])]

    def run_positions(self, samples: Sequence[int] | np.ndarray) -> np.ndarray:
        """For each sample index, the position in `runs` of the run it belongs to (one search
        over the runs' starts, not a scan per sample); ConfigError for an index outside every run."""
        samples = np.asarray(samples, dtype=np.int64)
        starts = np.array([r.start for r in self.runs], dtype=np.int64)
        ends = starts + np.array([r.count for r in self.runs], dtype=np.int64)
        if not self.runs:
            outside = np.ones(samples.shape, bool)
            pos = np.zeros(samples.shape, np.int64)
        else:
            order = np.argsort(starts, kind="stable")
            pos = order[np.clip(np.searchsorted(starts[order], samples, side="right") - 1, 0, None)]
            outside = (samples < starts[pos]) | (samples >= ends[pos])
        if outside.any():
            raise ConfigError(f"sample {int(samples[outside][0])} is outside store {self.path} ({self.n_samples} samples)")
        return pos

    def samples(self, split: str) -> np.ndarray:
        """Sample indices of every run in `split` ('train', 'val' or 'test'), in order.

        An empty split is an error: training or evaluating on nothing is never what was meant.
        """
        if split not in self.manifest["split"]:
            raise ConfigError(f"unknown split {split!r}; the store has {sorted(self.manifest['split'])}")
        runs = list(self.manifest["split"][split])
        if not runs:
            raise DataNotFoundError(
                f"split {split!r} of the store has no runs", path=str(self.path),
                hint="Rebuild the store with runs assigned to that split (StoreWriter.commit(split=...))",
            )
        return self.run_samples(runs)

    def run_samples(self, run_ids: Sequence[str]) -> np.ndarray:
        """Sample indices of the runs `run_ids`, in order (empty for none); ConfigError for an unknown run."""
        runs = [self.run(r) for r in run_ids]
        return np.concatenate([np.arange(r.start, r.start + r.count, dtype=np.int64) for r in runs]) if runs else np.zeros(0, np.int64)

    def verify(self, max_failures: int = 20, threads: int = 0) -> dict[str, Any]:
        """Scan every chunk (checksums, sizes, NaN/Inf, ranges, stray files); returns a report."""
        return dict(_core().verify_store(str(self.path), max_failures, threads))

    def verify_digest(self) -> None:
        """Recompute the content digest from the data; IntegrityError if it differs from the
        manifest's (data changed after writing, or a manifest copied from another store)."""
        check_digests(self.path, self.manifest, UNDIGESTED, arrays=ARRAYS)


def _variable(d: Mapping[str, Any]) -> Variable:
    lo, hi = d.get("valid_range") or (None, None)
    return Variable(name=d["name"], units=d.get("units", ""), valid_range=(lo, hi), long_name=d.get("long_name", ""),
                    range_source=d.get("range_source"))


def open_store(path: str | Path) -> Store:
    """Open the store at `path` (a directory or an `s3://bucket/prefix` URL), checking that it
    is complete and consistent.

    Raises DataNotFoundError (missing or incompletely written store, with the command that
    builds it) or IntegrityError (inconsistent manifest or array metadata).
    """
    root = store_location(path)
    try:
        raw = read_group_manifest(root)
    except (OSError, ValueError, KeyError, TypeError):
        raw = None  # missing or unparsable: the core names what is wrong
    if isinstance(raw, dict):
        # Python's json reads NaN / Infinity / 1e999, which JSON (and the core) cannot: name the key.
        _check_finite({k: v for k, v in raw.items() if k != "provenance"}, "", root)
    # The core checks existence, completeness, manifest consistency (every number it uses:
    # sizes, valid ranges, normalization), dtypes, shapes, chunking and the parameter table;
    # one source of truth for what a valid store is.
    _core().BatchReader(str(root), "none", 1)
    manifest = read_group_manifest(root)
    # fields the core does not need to read, but without which the store cannot be checked or described
    missing = [k for k in ("stats", "digests", "content_digest") if k not in manifest]
    if missing:
        raise IntegrityError(f"manifest: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}", path=str(root))
    _check_split(manifest, root)
    _check_stats(manifest, root)
    return Store(root, manifest)


_STAT_FIELDS = ("count", "mean", "std", "min", "max")


def _check_finite(node: Any, key: str, root: Path | str) -> None:
    """Every number of the manifest (but the free-form provenance) is finite."""
    if isinstance(node, float) and not np.isfinite(node):
        raise IntegrityError(f"manifest: {key} is {node}, not a finite number", path=str(root))
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, f"{key}.{k}" if key else str(k), root)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, f"{key}[{i}]", root)


def _check_stats(manifest: dict[str, Any], root: Path | str) -> None:
    """The statistics (which the core does not read, so it does not check them): each field of
    the shape its section needs, counts whole and >= 0, values finite, std >= 0, min <= max.
    The numbers the core reads (sizes, ranges, normalization) it checks itself at open."""
    v, lv = manifest["sample_shape"][:2]
    p = len(manifest.get("params", []))
    stats = manifest["stats"]

    def bad(key: str, why: str) -> IntegrityError:
        return IntegrityError(f"manifest: {key} {why}", path=str(root))

    def section(key: str, shape: tuple[int, ...], required: bool = True) -> None:
        node: Any = stats
        for k in key.split("."):
            node = node.get(k) if isinstance(node, dict) else None
        if node is None and not required:
            return
        if not isinstance(node, dict):
            raise bad(f"stats.{key}", "is missing or not a mapping")
        for name in (*_STAT_FIELDS, "nan_count"):
            if name == "nan_count" and name not in node:
                continue
            try:
                a = np.asarray(node.get(name), dtype=np.float64)
            except (TypeError, ValueError):
                raise bad(f"stats.{key}.{name}", "is not a list of numbers") from None
            if a.shape != shape:
                raise bad(f"stats.{key}.{name}", f"has shape {list(a.shape)}, the store needs {list(shape)}")
            if not np.isfinite(a).all():
                raise bad(f"stats.{key}.{name}", "holds a value that is not finite")
            if name in ("count", "nan_count") and ((a < 0).any() or (a != np.round(a)).any()):
                raise bad(f"stats.{key}.{name}", "must hold whole numbers >= 0")
            if name == "std" and (a < 0).any():
                raise bad(f"stats.{key}.std", "holds a negative standard deviation")
        if (np.asarray(node["min"], np.float64) > np.asarray(node["max"], np.float64)).any():
            raise bad(f"stats.{key}", "has min > max")

    if not isinstance(stats, dict):
        raise bad("stats", "is not a mapping")
    section("cubes.per_variable", (v,))
    section("cubes.per_level", (v, lv))
    section("params", (p,), required=p > 0)


def _check_split(manifest: dict[str, Any], root: Path | str) -> None:
    """The split section (which the core does not read): {train|val|test: [run ids of this store]},
    a run in at most one split. Anything else is an IntegrityError, not a KeyError/TypeError later."""
    split = manifest.get("split")
    if not isinstance(split, dict):
        raise IntegrityError(f"manifest: split must map train/val/test to run ids, got {type(split).__name__}", path=str(root))
    ids = {r["id"] for r in manifest["runs"]}
    seen: dict[str, str] = {}
    for name, runs in split.items():
        if name not in SPLITS:
            raise IntegrityError(f"manifest: unknown split {name!r} (splits are train, val and test)", path=str(root))
        if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
            raise IntegrityError(f"manifest: split {name!r} must be a list of run ids", path=str(root))
        for r in runs:
            if r not in ids:
                raise IntegrityError(f"manifest: split {name!r} names run {r!r}, which is not in the store", path=str(root))
            if r in seen:
                raise IntegrityError(f"manifest: run {r!r} is in both the {seen[r]!r} and {name!r} splits", path=str(root))
            seen[r] = name
