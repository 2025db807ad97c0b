"""Quality reports, one per version, shaped like a great-expectations validation result:

    {"success": bool,
     "results": [{"expectation", "success", "observed_value", "expected", "details"}, ...],
     "statistics": {"evaluated_expectations", "successful_expectations",
                    "unsuccessful_expectations", "success_percent"},
     "variables": {name: {count, mean, std, min, max}}, "histograms": {...}, "splits": {...}}

The shared expectations (digest, values finite and in range, split counts, drift against the
previous version of the same dataset: mean and std shift in units of the old std) are built
here; the statistics, histograms and the kind's own expectations (a cube's chunk scan, leakage
and duplicates; a table's duplicate keys...) come from the store's kind (`StoreKind`), so this
module names no kind.
"""

from __future__ import annotations

import math
from typing import Any

from ..stores._remote import store_location
from ..stores.kinds import expectation, get_kind
from ._scan import StoreInfo, read_manifest

__all__ = ["build_report", "expectation", "summarize", "DRIFT_THRESHOLD"]

DRIFT_THRESHOLD = 0.5  # in units of the previous version's std


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's `success` and `statistics` from its results."""
    ok = sum(1 for r in results if r["success"])
    n = len(results)
    return {"success": ok == n, "statistics": {"evaluated_expectations": n, "successful_expectations": ok,
                                               "unsuccessful_expectations": n - ok,
                                               "success_percent": round(100.0 * ok / n, 2) if n else 100.0}}


def _variable_results(manifest: dict[str, Any], stats: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Each variable's values finite (an empty column of a table is no failure) and inside the
    valid range its manifest declares (`variables[].valid_range`, when it has one)."""
    out = []
    ranges = {v["name"]: v.get("valid_range") for v in manifest.get("variables", []) if isinstance(v, dict)}
    for name, s in stats.items():
        lo, hi = ranges.get(name) or (None, None)
        finite = all(math.isfinite(s[k]) for k in ("mean", "std", "min", "max")) or s["count"] == 0
        inside = finite and (lo is None or s["min"] >= lo) and (hi is None or s["max"] <= hi)
        out.append(expectation("expect_column_values_finite_and_in_range", inside, s,
                               {"min": lo, "max": hi}, {"variable": name}))
    return out


def _split_results(splits: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Something to train on: the train split (or, for kinds without splits, "all") is not empty."""
    main = "train" if "train" in splits else "all"
    return [expectation("expect_split_counts", all(v["samples"] > 0 for k, v in splits.items() if k in ("train", "all")),
                        splits, {main: {"samples": ">0"}})]


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
    """The quality report of a store that passed `_scan.full_check` (`info.scan` holds its
    kind's scan report). `previous`: (ref, variables statistics) of the previous ready version."""
    path = store_location(info.uri)
    manifest = read_manifest(path)
    kind = get_kind(info.kind)
    stats = kind.statistics(path, manifest)
    results = [expectation("expect_digest_matches_manifest", True, info.digest, info.digest, {"uri": info.uri})]
    results += _variable_results(manifest, stats)
    results += _split_results(info.splits)
    results += kind.expectations(path, manifest, info.scan)
    drift_results, drift_info = _drift_results(stats, previous, threshold)
    results += drift_results
    report = {**summarize(results), "results": results, "ref": ref, "kind": info.kind, "digest": info.digest,
              "variables": stats, "histograms": kind.histograms(path, manifest), "splits": info.splits, "drift": drift_info}
    return _clean(report)


def with_live_check(report: dict[str, Any], problem: str, checked: str) -> dict[str, Any]:
    """`report` with an extra expectation saying whether the store is still the registered
    one (`problem` is '' when it is), so a deleted or changed store shows why in the report."""
    results = [*report.get("results", []),
               expectation("expect_store_unchanged_since_registration", not problem, problem or "unchanged", "unchanged",
                           {"checked": checked})]
    return {**report, **summarize(results), "results": results}
