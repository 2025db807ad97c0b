"""Bootstrap intervals over planets for the emulator's skill (issue 27: with 8-16 held-out
planets the planet-to-planet spread is as large as the margin, so every headline skill carries
its interval). Used by `astrobio evaluate` (`evaluate_store`) and the k-fold's aggregate.

The unit resampled is the planet (a run), not the sample: the months of one planet are one
climate, not independent draws. Skill = 1 - RMSE_model / RMSE_baseline with both RMSEs pooled
over the drawn planets, weighted by their sample counts, so the point estimate (every planet
once) is exactly the table's pooled skill. 95% percentile interval of 2000 draws, fixed seed;
the planets are taken in the order of their ids, so the interval does not depend on the order
they are listed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..train.report import rows_table

__all__ = ["DRAWS", "SEED", "LEVEL", "bootstrap_skill", "planet_intervals", "interval_rows"]

DRAWS = 2000
SEED = 20261206
LEVEL = 0.95
_BASELINES = ("climatology", "physics_baseline")


def bootstrap_skill(model: Mapping[str, float], baseline: Mapping[str, float], weights: Mapping[str, float] | None = None, *,
                    draws: int = DRAWS, seed: int = SEED, level: float = LEVEL) -> dict[str, Any]:
    """Skill of the model over a baseline from per-planet RMSEs (`model`, `baseline`: planet id ->
    RMSE; `weights`: planet id -> sample count, default 1), with its bootstrap interval over
    planets: {"point", "low", "high", "planets", "draws", "seed", "level"}."""
    ids = sorted(model)
    if not ids or set(ids) != set(baseline) or (weights is not None and set(ids) != set(weights)):
        raise ConfigError("bootstrap over planets: the model and baseline need RMSEs (and weights) for the same planets")
    m = np.array([model[i] for i in ids], np.float64) ** 2
    b = np.array([baseline[i] for i in ids], np.float64) ** 2
    w = np.array([weights[i] for i in ids] if weights is not None else [1.0] * len(ids), np.float64)
    if not (np.isfinite(m).all() and np.isfinite(b).all() and (w > 0).all() and (b > 0).all()):
        raise ConfigError("bootstrap over planets: RMSEs must be finite, baselines and weights positive")
    # which planets each draw takes: indices into the real per-planet errors
    draw = np.random.default_rng(seed).integers(0, len(ids), size=(draws, len(ids)))  # real-data-ok: seeded resampling
    skills = 1.0 - np.sqrt((w * m)[draw].sum(axis=1) / (w * b)[draw].sum(axis=1))
    low, high = np.percentile(skills, [50 * (1 - level), 50 * (1 + level)])
    point = 1.0 - float(np.sqrt((w * m).sum() / (w * b).sum()))
    return {"point": point, "low": float(low), "high": float(high), "planets": len(ids), "draws": draws, "seed": seed,
            "level": level}


def planet_intervals(runs: Mapping[str, Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Intervals over the planets of per-run records (``{"model": rmse, "climatology": rmse,
    "physics_baseline": rmse, "n_samples": n, "rmse_physical": {name: {variable: rmse}}}``, the
    layout of a summary's ``evaluation.<split>.runs``): per baseline, the overall skill ("all",
    normalized units) and, where every record has them, each variable's. Empty with < 2 planets."""
    if len(runs) < 2:
        return {}
    weights = {r: float(rec.get("n_samples", 1)) for r, rec in runs.items()}
    out: dict[str, Any] = {}
    for base in _BASELINES:
        if not all(base in rec for rec in runs.values()):
            continue
        one = {"all": bootstrap_skill({r: rec["model"] for r, rec in runs.items()},
                                      {r: rec[base] for r, rec in runs.items()}, weights, **kwargs)}
        phys = [rec.get("rmse_physical") or {} for rec in runs.values()]
        if all("model" in p and base in p for p in phys):
            for v in phys[0]["model"]:
                one[v] = bootstrap_skill({r: rec["rmse_physical"]["model"][v] for r, rec in runs.items()},
                                         {r: rec["rmse_physical"][base][v] for r, rec in runs.items()}, weights, **kwargs)
        out[base] = one
    return out


def interval_rows(intervals: Mapping[str, Any], units: Mapping[str, str], title: str) -> str:
    """A table of the skills with their intervals (one row per metric, one column per baseline)."""
    bases = [b for b in _BASELINES if b in intervals]
    if not bases:
        return ""
    first = intervals[bases[0]]["all"]
    label = {"climatology": "clim.", "physics_baseline": "physics"}

    def cell(s: Mapping[str, float]) -> str:
        return f"{100 * s['point']:+.1f}% [{100 * s['low']:+.1f}, {100 * s['high']:+.1f}]"

    rows = [("metric", "", *(f"skill vs {label[b]} [{100 * first['level']:.0f}% interval]" for b in bases))]
    rows.append(("all [normalized]", "", *(cell(intervals[b]["all"]) for b in bases)))
    for v, unit in units.items():
        if all(v in intervals[b] for b in bases):
            rows.append((f"{v} [{unit}]", "", *(cell(intervals[b][v]) for b in bases)))
    head = (f"{title}: bootstrap over {first['planets']} planets ({first['draws']} draws, seed {first['seed']}; "
            "percentile interval)")
    return rows_table(head, rows)
