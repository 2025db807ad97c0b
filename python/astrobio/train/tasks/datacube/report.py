"""The datacube emulator's summary table and plots: loss_curves.png (losses in normalized units,
validation RMSE beside the climatology) and fields.png (truth / model / climatology / error of
one variable at one level for a few held-out samples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ....stores.cube import Store
from ...report import fmt, plot_metric_curves, pyplot, rows_table, save_figure
from .evaluate import BASELINES, baseline_label

__all__ = ["summary_table", "plot_loss_curves", "plot_fields", "plot_choice", "coordinate"]


def summary_table(summary: dict[str, Any]) -> str:
    """A plain-text table: per held-out split, overall and per-variable RMSE of the model beside
    each baseline (climatology; the physics baseline where the summary has it) and the skill."""
    first = next(iter(summary["evaluation"].values()))
    baselines = [b for b in BASELINES if b in first]
    rows = [("split", "metric", "model", *(b.replace("_", " ") for b in baselines),
             *(f"skill vs {baseline_label(b)}" for b in baselines))]

    def skill(model: float, base: float) -> str:
        return f"{100 * (1 - model / base):+.1f}%" if base > 0 else "n/a"

    for split, res in summary["evaluation"].items():
        m = res["model"]
        rows.append((f"{split} ({res['n_samples']})", "rmse [normalized]", fmt(m["rmse"]),
                     *(fmt(res[b]["rmse"]) for b in baselines), *(skill(m["rmse"], res[b]["rmse"]) for b in baselines)))
        for name, unit in summary["units"].items():
            mp = m["rmse_physical"][name]
            rows.append(("", f"{name} [{unit}]", fmt(mp), *(fmt(res[b]["rmse_physical"][name]) for b in baselines),
                         *(skill(mp, res[b]["rmse_physical"][name]) for b in baselines)))
        if len(res.get("runs", {})) > 1:
            for run_id, r in res["runs"].items():
                rows.append(("", f"run {run_id} [normalized]", fmt(r["model"]), *(fmt(r[b]) for b in baselines if b in r),
                             *(skill(r["model"], r[b]) for b in baselines if b in r)))
        for term in sorted(res.get("physics", {}).get("model", {})):
            p = res["physics"]
            rows.append(("", f"physics {term} (truth {fmt(p['truth'][term])})", fmt(p["model"][term]),
                         fmt(p["climatology"][term]), *([""] * (2 * len(baselines) - 1))))
    if "ensemble" in summary:
        seeds = ", ".join(str(m["seed"]) for m in summary["ensemble"]["members"])
        head = (f"ensemble {summary['run_dir']}: mean prediction of {len(summary['ensemble']['members'])} {summary['model']} "
                f"runs (seeds {seeds}) on {summary['store']}; {summary['wall_time_s']:.0f} s")
    else:
        head = (f"run {summary['run_dir']}: {summary['model']} on {summary['store']}; best epoch {summary['best_epoch']} "
                f"of {summary['epochs_run']} (val rmse {fmt(summary['best_score'] or float('nan'))}); {summary['wall_time_s']:.0f} s; "
                f"precision {summary['precision']}")
    return rows_table(head, rows)


def plot_loss_curves(history: dict[str, Any], path: Path, baseline_val_rmse: float | None) -> Path:
    """The emulator's curves: losses in normalized units (log scale) and validation RMSE beside
    the climatology."""
    return plot_metric_curves(history, path, metric="val_rmse", label="val RMSE [normalized]",
                              baseline=baseline_val_rmse, baseline_label="climatology",
                              loss_label="loss [normalized units^2]", val_loss_label="val MSE", log_loss=True)


def plot_fields(fields: dict[str, list[np.ndarray]], samples: list[str], path: Path, *, var_index: int, var_name: str,
                unit: str, level_index: int, level_label: str, lat: list[float] | None = None,
                lon: list[float] | None = None) -> Path:
    """Rows: held-out samples (`samples`: their labels); columns: truth, model, climatology,
    model - truth (lat x lon)."""
    plt = pyplot()
    extent = [min(lon), max(lon), min(lat), max(lat)] if lat and lon else None
    n = len(fields["truth"])
    fig, axes = plt.subplots(max(1, n), 4, figsize=(15, 2.6 * max(1, n)), squeeze=False)
    for r in range(n):
        maps = [fields[k][r][var_index, level_index] for k in ("truth", "model", "climatology")]
        lo, hi = min(m.min() for m in maps), max(m.max() for m in maps)
        for c, (title, m) in enumerate(zip(("truth", "model", "climatology"), maps)):
            im = axes[r, c].imshow(m, origin="lower", vmin=lo, vmax=hi, cmap="viridis", aspect="auto", extent=extent)
            axes[r, c].set_title(f"{samples[r]}: {title}", fontsize=9)
            fig.colorbar(im, ax=axes[r, c], label=unit)
        err = maps[1] - maps[0]
        lim = float(np.abs(err).max()) or 1.0
        im = axes[r, 3].imshow(err, origin="lower", vmin=-lim, vmax=lim, cmap="RdBu_r", aspect="auto", extent=extent)
        axes[r, 3].set_title("model - truth", fontsize=9)
        fig.colorbar(im, ax=axes[r, 3], label=unit)
    fig.suptitle(f"{var_name} at {level_label} (x: longitude, y: latitude{'' if extent else ', grid indices'})")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def plot_choice(store: Store, variables: list[str]) -> tuple[int, int, str]:
    """ta (else the first variable) at the lowest model level (largest sigma)."""
    vi = variables.index("ta") if "ta" in variables else 0
    level = store.manifest.get("coords", {}).get("level", {})
    values = level.get("values")
    if values and len(values) == store.sample_shape[1]:
        li = int(np.argmax(values))
        return vi, li, f"{level.get('name', 'level')} = {values[li]:g}"
    return vi, 0, "level 0"


def coordinate(store: Store, name: str) -> list[float] | None:
    values = store.manifest.get("coords", {}).get(name, {}).get("values")
    return [float(v) for v in values] if values else None
