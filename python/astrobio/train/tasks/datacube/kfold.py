"""k-fold evaluation by planet of the climate emulator (`python -m astrobio.train --kfold K`, the
datacube task's `run_kfold`, see `astrobio.train.tasks.Folds`): every planet of the climate
store is held out exactly once, and the skill over both baselines is reported as mean and spread
over the folds and, pooled over the held-out planets of every fold, with bootstrap intervals over
planets (`astrobio.emulator.intervals`), beside each planet's own row.

Folds: within each rotation regime the planets are ordered by instellation and dealt to the folds
in turn, so every fold holds both regimes and spans the instellation range. Fold i tests on its
planets; its validation planets (early stopping) are, within each regime of the rest, the ones at
a third and two thirds of the instellation order; the others train. Each fold is one normal run
(`train`) in ``<output_dir>/fold-<i>``; a finished fold is kept and an interrupted one resumes, so
the command itself can be rerun after a crash.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...._fsutil import atomic_write
from ....errors import ConfigError
from ....reader import CubeReader
from ....stores.cube import Store, open_store
from ...config import TrainConfig
from ...evaluation import Evaluation
from ...report import fmt, rows_table
from ...subruns import kept_or_trained
from ....emulator.intervals import interval_rows, planet_intervals
from .data import default_climate_store
from .evaluate import BASELINES, baseline_label

__all__ = ["planet_folds", "run_kfold", "KFoldResult", "aggregate"]

@dataclass
class KFoldResult:
    """The folds' summaries and their aggregate (mean and spread of each metric)."""

    run_dir: Path
    folds: list[dict[str, Any]]
    aggregate: dict[str, Any]
    table: str
    outputs: str = "kfold.txt, kfold.json, fold-<i>/ with each fold's run"


def _planet_keys(store: Store, runs: list[str]) -> dict[str, tuple[int, float]]:
    """(regime, instellation) of each run from its first parameter row (0/0.0 when absent)."""
    names = [p.name for p in store.params]
    reader = CubeReader(store.path, normalize="none")
    rows = np.asarray(reader.native.read_params([store.run(r).start for r in runs]))
    sync = rows[:, names.index("synchronous")] if "synchronous" in names else np.zeros(len(runs))
    inst = rows[:, names.index("instellation")] if "instellation" in names else np.zeros(len(runs))
    return {r: (int(s > 0.5), float(i)) for r, s, i in zip(runs, sync, inst)}


def planet_folds(store: Store, k: int) -> list[dict[str, list[str]]]:
    """`k` splits {train, val, test} of the store's runs (see the module docstring)."""
    runs = sorted({r for members in store.split.values() for r in members})
    if k < 2:
        raise ConfigError(f"--kfold needs at least 2 folds, got {k}")
    if len(runs) < 2 * k:
        raise ConfigError(f"--kfold {k} needs at least {2 * k} planets; the store has {len(runs)}")
    keys = _planet_keys(store, runs)
    folds: list[list[str]] = [[] for _ in range(k)]
    dealt = 0
    for regime in sorted({g for g, _ in keys.values()}):
        members = sorted((r for r in runs if keys[r][0] == regime), key=lambda r: (keys[r][1], r))
        for r in members:
            folds[dealt % k].append(r)
            dealt += 1
    out = []
    for i in range(k):
        test = sorted(folds[i])
        rest = [r for r in runs if r not in set(test)]
        val: list[str] = []
        for regime in sorted({keys[r][0] for r in rest}):
            members = sorted((r for r in rest if keys[r][0] == regime), key=lambda r: (keys[r][1], r))
            for q in (1 / 3, 2 / 3):
                pick = members[min(len(members) - 1, int(round(q * (len(members) - 1))))]
                if pick not in val and len(members) > 2:
                    val.append(pick)
        if not val:
            val = [rest[0]]
        out.append({"train": sorted(r for r in rest if r not in val), "val": sorted(val), "test": test})
    return out


def _fold_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    evaluation = Evaluation.from_summary(summary)
    res = evaluation.evaluation[evaluation.held_out_split]
    out: dict[str, Any] = {"n_samples": res["n_samples"], "rmse": {}, "rmse_physical": {}, "skill": {}}
    for name in ("model", *BASELINES):
        if name in res:
            out["rmse"][name] = res[name]["rmse"]
            out["rmse_physical"][name] = dict(res[name]["rmse_physical"])
    for base in BASELINES:
        if base not in res:
            continue
        overall = 1 - res["model"]["rmse"] / res[base]["rmse"]
        per_var = {v: 1 - res["model"]["rmse_physical"][v] / b for v, b in res[base]["rmse_physical"].items() if b > 0}
        out["skill"][base] = {"all": overall, **per_var}
    out["planets"] = dict(res.get("runs", {}))  # each held-out planet's record: the intervals over planets
    return out


def aggregate(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation (over folds, ddof 1) of every skill and RMSE; the skills pooled
    over every fold's held-out planets with bootstrap intervals over planets ("planets")."""
    def stats(values: list[float]) -> dict[str, float]:
        a = np.asarray(values, dtype=np.float64)
        return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
                "min": float(a.min()), "max": float(a.max())}

    metrics = [f["metrics"] for f in folds]
    out: dict[str, Any] = {"folds": len(folds), "skill": {}, "rmse_physical": {}}
    for base in BASELINES:
        if all(base in m["skill"] for m in metrics):
            out["skill"][base] = {key: stats([m["skill"][base][key] for m in metrics]) for key in metrics[0]["skill"][base]}
    for name in metrics[0]["rmse_physical"]:
        out["rmse_physical"][name] = {v: stats([m["rmse_physical"][name][v] for m in metrics])
                                      for v in metrics[0]["rmse_physical"][name]}
    planets = {r: rec for m in metrics for r, rec in m.get("planets", {}).items()}  # every planet tested once
    out["planets"] = {"intervals": planet_intervals(planets), "runs": planets}
    return out


def _table(run_dir: Path, folds: list[dict[str, Any]], agg: dict[str, Any], units: dict[str, str], n_planets: int) -> str:
    names = [n for n in ("model", *BASELINES) if n in agg["rmse_physical"]]
    bases = [b for b in BASELINES if b in agg["skill"]]
    rows = [("variable", *(f"{n.replace('_', ' ')} rmse" for n in names),
             *(f"skill vs {baseline_label(b)}" for b in bases))]

    def pm(s: dict[str, float], pct: bool = False) -> str:
        return f"{100 * s['mean']:+.1f}% ± {100 * s['std']:.1f}" if pct else f"{fmt(s['mean'])} ± {fmt(s['std'])}"

    for v, unit in units.items():
        rows.append((f"{v} [{unit}]", *(pm(agg["rmse_physical"][n][v]) for n in names),
                     *(pm(agg["skill"][b][v], pct=True) for b in bases)))
    rows.append(("all [normalized]", *([""] * len(names)), *(pm(agg["skill"][b]["all"], pct=True) for b in bases)))
    head = (f"k-fold by planet {run_dir}: {len(folds)} folds over {n_planets} planets, each tested once; "
            "mean ± standard deviation over the folds (RMSE in physical units)")
    lines = [rows_table(head, rows)]
    for i, f in enumerate(folds):
        skills = ", ".join(f"{baseline_label(b)} {100 * f['metrics']['skill'][b]['all']:+.1f}%"
                           for b in bases)
        lines.append(f"  fold {i}: test {', '.join(f['split']['test'])}: skill {skills}")
    planets = agg.get("planets", {})
    if planets.get("intervals"):
        lines += ["", interval_rows(planets["intervals"], units, "held-out planets of every fold, pooled")]
        for run_id, r in sorted(planets["runs"].items()):
            lines.append(f"  {run_id}: rmse {fmt(r['model'])}, skill " + ", ".join(
                f"{baseline_label(b)} {100 * (1 - r['model'] / r[b]):+.1f}%" for b in bases if r.get(b)))
    return "\n".join(lines)


def _trained_on(split: dict[str, list[str]]) -> Callable[[dict[str, Any]], bool]:
    """Whether a run's summary is of a training on `split`."""
    return lambda summary: summary.get("config", {}).get("data", {}).get("split") == split


def run_kfold(cfg: TrainConfig, k: int) -> KFoldResult:
    """Train and evaluate `k` folds by planet of `cfg`'s climate store (`DatacubeTask.run_kfold`)."""
    if cfg.data.split is not None:
        raise ConfigError("--kfold chooses the splits itself; drop data.split")
    store = open_store(cfg.data.store) if cfg.data.store else open_store(default_climate_store())
    cfg.data.store = str(store.path)
    run_dir = Path(cfg.trainer.output_dir or f"runs/kfold-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    splits = planet_folds(store, k)
    folds: list[dict[str, Any]] = []
    for i, split in enumerate(splits):
        fold_dir = run_dir / f"fold-{i}"
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.data.split = split
        summary = kept_or_trained(fold_cfg, fold_dir, scan=i == 0, finished_as_asked=_trained_on(split))
        if summary is None:
            continue  # a non-zero DDP rank
        folds.append({"fold": i, "split": split, "run_dir": str(fold_dir), "metrics": _fold_metrics(summary),
                      "units": summary["units"]})
    agg = aggregate(folds)
    table = _table(run_dir, folds, agg, folds[0]["units"], sum(len(s["test"]) for s in splits))
    with atomic_write(run_dir / "kfold.json", "w") as f:
        json.dump({"k": k, "store": cfg.data.store, "folds": folds, "aggregate": agg}, f, indent=1)
    with atomic_write(run_dir / "kfold.txt", "w") as f:
        f.write(table + "\n")
    return KFoldResult(run_dir, folds, agg, table)
