"""Measurements the quality report is built from: per-variable statistics, histograms from a
sample of the data, and per-sample chunk hashes (for leakage and duplicate checks). A store is a
directory or an s3:// URL; the measurements are the same for both."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IntegrityError
from ..reader import CubeReader
from ..stores import _remote
from ..stores.cube import open_store
from ..stores.graph import open_graphs
from ..stores.table import open_table

__all__ = ["variable_stats", "histograms", "chunk_hashes", "sample_hashes", "HIST_BINS", "HIST_SAMPLES"]

HIST_BINS = 30
HIST_SAMPLES = 48   # cube samples read for histograms, spread evenly over the store


def _moments(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"count": 0, "mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"count": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}


def _columns(path: Path | str, kind: str, manifest: dict[str, Any]) -> Iterable[tuple[str, np.ndarray]]:
    """(name, 1-D float values) per variable of a table or graph store."""
    if kind == "table":
        df, _ = open_table(path, verify=False)
        for c in manifest["columns"]:
            if c["dtype"] == "float64":
                yield c["name"], np.asarray(df[c["name"]], np.float64)
    else:
        graphs = open_graphs(path, verify=False)
        names = sorted({n for g in graphs.values() for n in g.feature_names})
        for n in names:
            parts = [g.x[:, g.feature_names.index(n)] for g in graphs.values() if n in g.feature_names]
            yield n, np.concatenate(parts).astype(np.float64)


def variable_stats(path: Path | str, kind: str, manifest: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per-variable count/mean/std/min/max: from the manifest for cubes (computed over every
    value at write time), from the data for tables and graphs (missing values left out)."""
    if kind == "cube":
        pv = manifest["stats"]["cubes"]["per_variable"]
        out = {}
        for i, v in enumerate(manifest["variables"]):
            out[v["name"]] = {k: float(pv[k][i]) for k in ("mean", "std", "min", "max")} | {"count": int(pv["count"][i])}
        return out
    return {name: _moments(vals) for name, vals in _columns(path, kind, manifest)}


def _hist(values: np.ndarray) -> dict[str, list[float]]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(v, bins=HIST_BINS)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def histograms(path: Path | str, kind: str, manifest: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per-variable histogram of the raw values: every value of tables and graphs; for cubes
    `HIST_SAMPLES` samples spread evenly over the store, read through the Rust core."""
    if kind != "cube":
        return {name: _hist(vals) for name, vals in _columns(path, kind, manifest)}
    n = open_store(path).n_samples
    idx = sorted(set(np.linspace(0, n - 1, min(n, HIST_SAMPLES)).round().astype(int).tolist()))
    batch = CubeReader(path, normalize="none", threads=1).read(idx).cubes
    return {v["name"]: _hist(np.asarray(batch[:, i], np.float64).ravel()) for i, v in enumerate(manifest["variables"])}


def chunk_hashes(path: Path | str, manifest: dict[str, Any]) -> dict[int, str]:
    """sha256 of each cube sample's stored chunk bytes, by sample index. Equal encoded bytes
    (same codecs) mean equal samples; different bytes are different samples."""
    if isinstance(path, str):
        return _object_hashes(path, int(manifest["n_samples"]))
    root = Path(path) / "cubes" / "c"
    out: dict[int, str] = {}
    for sample in range(int(manifest["n_samples"])):
        h = hashlib.sha256()
        base = root / str(sample)
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for f in files:
            h.update(f.relative_to(base).as_posix().encode() + b"\0" + f.read_bytes())
        out[sample] = h.hexdigest() if files else ""
    return out


def sample_hashes(path: Path | str, manifest: dict[str, Any], batch: int = 32) -> dict[int, str]:
    """sha256 of each cube sample's decoded raw values, by sample index, read through the Rust
    core (so every chunk is verified on the way): for sharded stores, whose samples share
    objects. Equal values mean equal samples."""
    reader = CubeReader(path, normalize="none")
    n = int(manifest["n_samples"])
    out: dict[int, str] = {}
    for start in range(0, n, batch):
        cubes = reader.read(range(start, min(n, start + batch))).cubes
        out.update({start + i: hashlib.sha256(np.ascontiguousarray(c).tobytes()).hexdigest() for i, c in enumerate(cubes)})
    return out


def _object_hashes(url: str, n_samples: int) -> dict[int, str]:
    """`chunk_hashes` over the chunk objects of the cube store at `url` (relative key and bytes
    per sample, as over files: a store gives the same hashes local and uploaded). Samples are
    fetched concurrently, one sample's objects in memory at a time per thread."""
    base = "cubes/c/"
    keys: dict[int, list[str]] = defaultdict(list)
    for key, _ in _remote.listing(url, base):
        sample, _, rest = key[len(base):].partition("/")
        if sample.isdigit() and int(sample) < n_samples:
            keys[int(sample)].append(rest)

    def digest(sample: int) -> str:
        h = hashlib.sha256()
        for rest in sorted(keys[sample]):
            data = _remote.get(url, f"{base}{sample}/{rest}")
            if data is None:  # deleted since the listing: the store is not the one checked
                raise IntegrityError("chunk object disappeared while hashing", sample=sample, path=url)
            h.update(rest.encode() + b"\0" + data)
        return h.hexdigest() if keys[sample] else ""

    with ThreadPoolExecutor(_remote.UPLOAD_THREADS) as pool:
        return dict(zip(range(n_samples), pool.map(digest, range(n_samples))))
