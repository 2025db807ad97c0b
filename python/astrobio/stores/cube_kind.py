"""The cube store as a store kind ("cube"; manifests say "astrobio.store"): open and verify
through the Rust core, describe runs and splits, statistics from the manifest, histograms and
per-sample hashes read through the core, and the cube's own quality expectations (the chunk
scan by check, no run in two splits, no identical sample in two splits, no duplicates).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IntegrityError
from . import _remote
from .cube import FORMAT, Store, digest, open_store
from .kinds import Description, expectation, histogram

__all__ = ["CubeKind", "KIND", "chunk_hashes", "sample_hashes", "SCAN_CHECKS", "HIST_SAMPLES"]

HIST_SAMPLES = 48   # cube samples read for histograms, spread evenly over the store
# Rust scan failure reason -> the check it belongs to (verify.rs / chunk.rs / kernel.rs wording)
SCAN_CHECKS = {"checksum": ("checksum", "crc32c"), "size": ("size", "shorter", "decode", "length"),
               "finite": ("nan", "infinite", "inf"), "range": ("range",)}


def _reader(path: Path | str, **kw: Any) -> Any:
    from ..reader import CubeReader  # the core loads on first use (astrobio validate reports a broken one)

    return CubeReader(path, **kw)


class CubeKind:
    """[N, V, L, H, W] float32 samples in runs, split by run (`astrobio.stores.cube`)."""

    name = "cube"
    formats = (FORMAT,)

    def open(self, location: Path | str, *, verify: bool = True) -> Store:
        store = open_store(location)
        if verify:
            store.verify_digest()
        return store

    def verify(self, location: Path | str) -> tuple[bool, str]:
        """Open, scan every chunk in the Rust core, then check the digests."""
        store = open_store(location)
        report = store.verify()
        if not report["ok"]:
            first = report["failures"][0]
            return False, (f"{report['chunks_failed']} bad chunks, {report['unexpected_files']} stray files; first: "
                           f"run {first['run']!r} chunk {first['chunk']!r}: {first['reason']}")
        store.verify_digest()  # after the chunk scan, whose failures are more precise
        gb = report["bytes_decoded"] / 1e9
        return True, f"{report['samples']} samples, {len(store.runs)} runs, {gb:.3f} GB verified"

    def check(self, location: Path | str) -> dict[str, Any]:
        store = open_store(location)
        report = dict(store.verify())
        if not report["ok"]:
            first = report["failures"][0] if report["failures"] else {}
            raise IntegrityError(f"{report['chunks_failed']} bad chunks, {report['unexpected_files']} stray files; first: "
                                 f"{first.get('reason', 'unknown')}", run=first.get("run"), chunk=first.get("chunk"),
                                 path=str(location))
        store.verify_digest()
        return report

    def digest(self, manifest: Mapping[str, Any]) -> str:
        return digest(manifest)

    def describe(self, location: Path | str, manifest: Mapping[str, Any]) -> Description:
        counts = {r["id"]: int(r["count"]) for r in manifest["runs"]}
        splits = {name: {"runs": len(ids), "samples": sum(counts[i] for i in ids)} for name, ids in manifest["split"].items()}
        summary = {"format": manifest["format"], "format_version": manifest["format_version"], "n_samples": manifest["n_samples"],
                   "sample_shape": manifest["sample_shape"], "variables": [v["name"] for v in manifest["variables"]],
                   "params": [p["name"] for p in manifest.get("params", [])], "runs": len(manifest["runs"])}
        return Description(splits, summary)

    def statistics(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """From the manifest: computed over every value at write time."""
        pv = manifest["stats"]["cubes"]["per_variable"]
        return {v["name"]: {k: float(pv[k][i]) for k in ("mean", "std", "min", "max")} | {"count": int(pv["count"][i])}
                for i, v in enumerate(manifest["variables"])}

    def histograms(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, list[float]]]:
        """`HIST_SAMPLES` samples spread evenly over the store, read through the Rust core."""
        n = int(manifest["n_samples"])
        idx = sorted(set(np.linspace(0, n - 1, min(n, HIST_SAMPLES)).round().astype(int).tolist()))
        batch = _reader(location, normalize="none", threads=1).read(idx).cubes
        return {v["name"]: histogram(np.asarray(batch[:, i], np.float64).ravel()) for i, v in enumerate(manifest["variables"])}

    def expectations(self, location: Path | str, manifest: Mapping[str, Any], scan: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [*_scan_results(scan), _runs_in_one_split(manifest), *_chunk_results(location, manifest)]


KIND = CubeKind()


def _classify(reason: str) -> str:
    low = reason.lower()
    for check, words in SCAN_CHECKS.items():
        if any(w in low for w in words):
            return check
    return "stray" if "unexpected file" in low else "other"


def _scan_results(scan: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_check: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in scan.get("failures", []):
        by_check[_classify(str(f.get("reason", "")))].append(f)
    out = []
    for check in ("checksum", "size", "finite", "range"):
        fails = by_check.get(check, [])
        out.append(expectation(f"expect_chunk_{check}_valid", not fails,
                               {"chunks_checked": scan.get("chunks_checked", 0), "chunks_failed": len(fails)},
                               {"chunks_failed": 0}, {"array": "cubes", "failures": fails[:5]}))
    other = by_check.get("stray", []) + by_check.get("other", [])
    out.append(expectation("expect_no_stray_or_unreadable_chunks", not other and scan.get("unexpected_files", 0) == 0,
                           {"unexpected_files": scan.get("unexpected_files", 0), "other_failures": len(other)}, 0,
                           {"failures": other[:5]}))
    return out


def _runs_in_one_split(manifest: Mapping[str, Any]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    both = []
    for split, runs in manifest["split"].items():
        for r in runs:
            if r in seen:
                both.append({"run": r, "splits": [seen[r], split]})
            seen[r] = split
    return expectation("expect_no_run_in_two_splits", not both, len(both), 0, {"runs": both[:10]})


def _chunk_results(path: Path | str, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Leakage (an identical chunk in two splits) and duplicate samples, from chunk hashes."""
    # A sharded store's samples share objects: hash each sample's decoded values instead.
    hashes = sample_hashes(path, manifest) if _reader(path).shard_samples else chunk_hashes(path, manifest)
    split_of = {r: s for s, runs in manifest["split"].items() for r in runs}
    where: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for r in manifest["runs"]:
        for i in range(int(r["start"]), int(r["start"]) + int(r["count"])):
            if hashes.get(i):
                where[hashes[i]].append((i, r["id"], split_of.get(r["id"], "none")))
    dup_groups = [g for g in where.values() if len(g) > 1]
    leaks = [g for g in dup_groups if len({s for _, _, s in g if s != "none"}) > 1]
    fmt = [[{"sample": i, "run": r, "split": s} for i, r, s in g] for g in leaks[:5]]
    dups = [[{"sample": i, "run": r, "split": s} for i, r, s in g] for g in dup_groups[:5]]
    return [expectation("expect_no_identical_chunk_in_two_splits", not leaks, len(leaks), 0, {"groups": fmt}),
            expectation("expect_no_duplicate_samples", not dup_groups, sum(len(g) - 1 for g in dup_groups), 0, {"groups": dups})]


def chunk_hashes(path: Path | str, manifest: Mapping[str, Any]) -> dict[int, str]:
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


def sample_hashes(path: Path | str, manifest: Mapping[str, Any], batch: int = 32) -> dict[int, str]:
    """sha256 of each cube sample's decoded raw values, by sample index, read through the Rust
    core (so every chunk is verified on the way): for sharded stores, whose samples share
    objects. Equal values mean equal samples."""
    reader = _reader(path, normalize="none")
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

    def digest_of(sample: int) -> str:
        h = hashlib.sha256()
        for rest in sorted(keys[sample]):
            data = _remote.get(url, f"{base}{sample}/{rest}")
            if data is None:  # deleted since the listing: the store is not the one checked
                raise IntegrityError("chunk object disappeared while hashing", sample=sample, path=url)
            h.update(rest.encode() + b"\0" + data)
        return h.hexdigest() if keys[sample] else ""

    with ThreadPoolExecutor(_remote.UPLOAD_THREADS) as pool:
        return dict(zip(range(n_samples), pool.map(digest_of, range(n_samples))))
