"""Quality reports, one per version, shaped like a great-expectations validation result:

    {"success": bool,
     "results": [{"expectation", "success", "observed_value", "expected", "details"}, ...],
     "statistics": {"evaluated_expectations", "successful_expectations",
                    "unsuccessful_expectations", "success_percent"},
     "variables": {name: {count, mean, std, min, max}}, "histograms": {...}, "splits": {...}}

Built from the Rust scan (checksum, size, finite, range per array), the store's statistics,
split counts, leakage and duplicate checks on chunk hashes, and drift against the previous
version of the same dataset (mean and std shift in units of the old std).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..reader import CubeReader
from ..stores._remote import store_location
from ..stores.table import open_table
from ._measure import chunk_hashes, histograms, sample_hashes, variable_stats
from ._scan import StoreInfo, read_manifest

__all__ = ["build_report", "expectation", "summarize", "DRIFT_THRESHOLD", "SCAN_CHECKS"]

DRIFT_THRESHOLD = 0.5  # in units of the previous version's std
# Rust scan failure reason -> the check it belongs to (verify.rs / chunk.rs / kernel.rs wording)
SCAN_CHECKS = {"checksum": ("checksum", "crc32c"), "size": ("size", "shorter", "decode", "length"),
               "finite": ("nan", "infinite", "inf"), "range": ("range",)}


def expectation(name: str, success: bool, observed: Any = None, expected: Any = None, details: Any = None) -> dict[str, Any]:
    return {"expectation": name, "success": bool(success), "observed_value": observed, "expected": expected, "details": details or {}}


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's `success` and `statistics` from its results."""
    ok = sum(1 for r in results if r["success"])
    n = len(results)
    return {"success": ok == n, "statistics": {"evaluated_expectations": n, "successful_expectations": ok,
                                               "unsuccessful_expectations": n - ok,
                                               "success_percent": round(100.0 * ok / n, 2) if n else 100.0}}


def _classify(reason: str) -> str:
    low = reason.lower()
    for check, words in SCAN_CHECKS.items():
        if any(w in low for w in words):
            return check
    return "stray" if "unexpected file" in low else "other"


def _scan_results(info: StoreInfo) -> list[dict[str, Any]]:
    scan = info.scan
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


def _variable_results(kind: str, manifest: dict[str, Any], stats: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    out = []
    ranges = {v["name"]: v.get("valid_range") for v in manifest.get("variables", [])} if kind == "cube" else {}
    for name, s in stats.items():
        lo, hi = ranges.get(name) or (None, None)
        finite = all(math.isfinite(s[k]) for k in ("mean", "std", "min", "max")) or (kind != "cube" and s["count"] == 0)
        inside = finite and (lo is None or s["min"] >= lo) and (hi is None or s["max"] <= hi)
        out.append(expectation("expect_column_values_finite_and_in_range", inside, s,
                               {"min": lo, "max": hi}, {"variable": name}))
    return out


def _split_results(kind: str, manifest: dict[str, Any], splits: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    out = [expectation("expect_split_counts", all(v["samples"] > 0 for k, v in splits.items() if k in ("train", "all")),
                       splits, {"train": {"samples": ">0"}} if kind == "cube" else {"all": {"samples": ">0"}})]
    if kind != "cube":
        return out
    seen: dict[str, str] = {}
    both = []
    for split, runs in manifest["split"].items():
        for r in runs:
            if r in seen:
                both.append({"run": r, "splits": [seen[r], split]})
            seen[r] = split
    out.append(expectation("expect_no_run_in_two_splits", not both, len(both), 0, {"runs": both[:10]}))
    return out


def _chunk_results(path: Path | str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Leakage (an identical chunk in two splits) and duplicate samples, from chunk hashes."""
    # A sharded store's samples share objects: hash each sample's decoded values instead.
    hashes = sample_hashes(path, manifest) if CubeReader(path).shard_samples else chunk_hashes(path, manifest)
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


def _table_duplicates(manifest: dict[str, Any], path: Path | str) -> list[dict[str, Any]]:
    df, _ = open_table(path, verify=False)
    key = manifest.get("key") or df.columns[0]
    dup_keys = int(df[key].duplicated().sum())
    dup_rows = int(df.duplicated().sum())
    return [expectation("expect_no_duplicate_samples", dup_keys == 0 and dup_rows == 0,
                        {"duplicate_keys": dup_keys, "duplicate_rows": dup_rows}, 0, {"key": key})]


def drift(stats: dict[str, dict[str, float]], previous: dict[str, dict[str, float]], threshold: float) -> dict[str, dict[str, float]]:
    """Per variable: |mean shift| and |std shift| in units of the previous std (inf when the
    previous std is 0 and the value moved)."""
    out = {}
    for name in sorted(stats.keys() & previous.keys()):
        # stored reports spell non-finite numbers as strings ("nan", "inf"): float() reads both
        new = {k: float(v) for k, v in stats[name].items()}
        old = {k: float(v) for k, v in previous[name].items()}

        def shift(a: float, b: float, scale: float) -> float:
            if not (math.isfinite(a) and math.isfinite(b)):
                return 0.0 if (math.isnan(a) and math.isnan(b)) else math.inf
            return abs(a - b) / scale if scale > 0 else (0.0 if a == b else math.inf)

        m = shift(new["mean"], old["mean"], old["std"])
        s = shift(new["std"], old["std"], old["std"])
        out[name] = {"mean_shift": m, "std_shift": s, "flagged": max(m, s) > threshold}
    return out


def _drift_results(stats: dict[str, Any], previous: tuple[str, dict[str, Any]] | None, threshold: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if previous is None:
        return [expectation("expect_no_drift_from_previous_version", True, None, {"max_shift": threshold},
                            {"note": "first version of this dataset: nothing to compare with"})], {}
    ref, old = previous
    d = drift(stats, old, threshold)
    added, removed = sorted(stats.keys() - old.keys()), sorted(old.keys() - stats.keys())
    results = [expectation("expect_no_drift_from_previous_version", not v["flagged"],
                           {"mean_shift": _num(v["mean_shift"]), "std_shift": _num(v["std_shift"])},
                           {"max_shift": threshold}, {"variable": k, "previous": ref}) for k, v in d.items()]
    results.append(expectation("expect_same_variables_as_previous_version", not added and not removed,
                               {"added": added, "removed": removed}, {"added": [], "removed": []}, {"previous": ref}))
    return results, {"previous": ref, "threshold": threshold, "variables": {k: {a: _num(b) for a, b in v.items()} for k, v in d.items()}}


def _num(x: Any) -> Any:
    """JSON has no inf/nan: report them as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return _num(obj)


def build_report(info: StoreInfo, *, ref: str, previous: tuple[str, dict[str, Any]] | None = None,
                 threshold: float = DRIFT_THRESHOLD) -> dict[str, Any]:
    """The quality report of a store that passed `_scan.full_check` (`info.scan` holds the Rust
    scan for cubes). `previous`: (ref, variables statistics) of the previous ready version."""
    path = store_location(info.uri)
    manifest = read_manifest(path)
    stats = variable_stats(path, info.kind, manifest)
    results = [expectation("expect_digest_matches_manifest", True, info.digest, info.digest, {"uri": info.uri})]
    if info.kind == "cube":
        results += _scan_results(info)
    results += _variable_results(info.kind, manifest, stats)
    results += _split_results(info.kind, manifest, info.splits)
    if info.kind == "cube":
        results += _chunk_results(path, manifest)
    elif info.kind == "table":
        results += _table_duplicates(manifest, path)
    drift_results, drift_info = _drift_results(stats, previous, threshold)
    results += drift_results
    report = {**summarize(results), "results": results, "ref": ref, "kind": info.kind, "digest": info.digest,
              "variables": stats, "histograms": histograms(path, info.kind, manifest), "splits": info.splits, "drift": drift_info}
    return _clean(report)


def with_live_check(report: dict[str, Any], problem: str, checked: str) -> dict[str, Any]:
    """`report` with an extra expectation saying whether the store is still the registered
    one (`problem` is '' when it is), so a deleted or changed store shows why in the report."""
    results = [*report.get("results", []),
               expectation("expect_store_unchanged_since_registration", not problem, problem or "unchanged", "unchanged",
                           {"checked": checked})]
    return {**report, **summarize(results), "results": results}
