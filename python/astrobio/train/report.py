"""End-of-run outputs in the run folder: the summary table (printed and in summary.txt),
summary.json, loss_curves.png and fields.png (truth / model / climatology / error of one
variable at one level for a few held-out samples)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DependencyError

__all__ = ["summary_table", "rows_table", "write_summary", "plot_loss_curves", "plot_metric_curves", "plot_fields"]


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"


def summary_table(summary: dict[str, Any]) -> str:
    """A plain-text table: per held-out split, overall and per-variable RMSE, model vs climatology."""
    rows = [("split", "metric", "model", "climatology", "skill")]
    for split, res in summary["evaluation"].items():
        m, c = res["model"], res["climatology"]
        rows.append((f"{split} ({res['n_samples']})", "rmse [normalized]", _fmt(m["rmse"]), _fmt(c["rmse"]),
                     f"{100 * res['skill']:+.1f}%"))
        for name, unit in summary["units"].items():
            mp, cp = m["rmse_physical"][name], c["rmse_physical"][name]
            skill = 1 - mp / cp if cp > 0 else float("nan")
            rows.append(("", f"{name} [{unit}]", _fmt(mp), _fmt(cp), f"{100 * skill:+.1f}%"))
        if len(res.get("runs", {})) > 1:
            for run_id, r in res["runs"].items():
                rows.append(("", f"run {run_id} [normalized]", _fmt(r["model"]), _fmt(r["climatology"]),
                             f"{100 * r['skill']:+.1f}%"))
        for term in sorted(res.get("physics", {}).get("model", {})):
            p = res["physics"]
            rows.append(("", f"physics {term} (truth {_fmt(p['truth'][term])})", _fmt(p["model"][term]),
                         _fmt(p["climatology"][term]), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = (f"run {summary['run_dir']}: {summary['model']} on {summary['store']}; best epoch {summary['best_epoch']} "
            f"of {summary['epochs_run']} (val rmse {_fmt(summary['best_val_rmse'])}); {summary['wall_time_s']:.0f} s; "
            f"precision {summary['precision']}")
    return head + "\n" + "\n".join(lines)


def rows_table(head: str, rows: list[tuple[str, ...]]) -> str:
    """`head` over a plain-text table of `rows` (the first row is the header; the first two
    columns left-aligned, the others right-aligned)."""
    n = max(len(r) for r in rows)
    rows = [tuple(r) + ("",) * (n - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return head + "\n" + "\n".join(lines)


def write_summary(run_dir: Path, summary: dict[str, Any], table: str | None = None) -> str:
    """summary.txt (the table; the datacube table when none is given) and summary.json."""
    table = summary_table(summary) if table is None else table
    (run_dir / "summary.txt").write_text(table + "\n")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    return table


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise DependencyError(f"plots need matplotlib ({e}); install it with `pip install matplotlib`, "
                              "or turn plots off with --set trainer.plots=false") from None
    return plt


def plot_loss_curves(history: dict[str, Any], path: Path, baseline_val_rmse: float | None) -> Path:
    """The datacube emulator's curves: losses in normalized units (log scale) and validation RMSE
    beside the climatology."""
    return plot_metric_curves(history, path, metric="val_rmse", label="val RMSE [normalized]",
                              baseline=baseline_val_rmse, baseline_label="climatology",
                              loss_label="loss [normalized units^2]", val_loss_label="val MSE", log_loss=True)


def plot_metric_curves(history: dict[str, Any], path: Path, *, metric: str, label: str,
                       baseline: float | None = None, baseline_label: str = "baseline", loss_label: str = "loss",
                       val_loss_label: str = "val loss", log_loss: bool = False) -> Path:
    """Training loss per step and epoch, and the monitored validation metric per epoch beside
    the baseline's value (any model; `metric` is the key of the history's epoch dicts)."""
    plt = _pyplot()
    epochs = history["epochs"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.asarray([s[2] for s in history["steps"]], float)
    losses = np.asarray([s[3] for s in history["steps"]], float)
    if len(steps):
        ax1.plot(steps, losses, lw=0.6, alpha=0.5, label="train loss (batch)")
    ax1.plot([e["step"] for e in epochs], [e["train_loss"] for e in epochs], "o-", ms=3, label="train loss (epoch mean)")
    if epochs and "val_loss" in epochs[0]:
        ax1.plot([e["step"] for e in epochs], [e["val_loss"] for e in epochs], "s-", ms=3, label=val_loss_label)
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel(loss_label)
    if log_loss:
        ax1.set_yscale("log")
    ax1.legend()
    ax2.plot([e["epoch"] for e in epochs], [e[metric] for e in epochs], "s-", ms=3, label="model")
    if baseline is not None and math.isfinite(baseline):
        ax2.axhline(baseline, color="k", ls="--", label=baseline_label)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(label)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_fields(fields: dict[str, list[np.ndarray]], samples: list[int], path: Path, *, var_index: int, var_name: str,
                unit: str, level_index: int, level_label: str, lat: list[float] | None = None,
                lon: list[float] | None = None) -> Path:
    """Rows: held-out samples; columns: truth, model, climatology, model - truth (lat x lon)."""
    plt = _pyplot()
    extent = [min(lon), max(lon), min(lat), max(lat)] if lat and lon else None
    n = len(fields["truth"])
    fig, axes = plt.subplots(max(1, n), 4, figsize=(15, 2.6 * max(1, n)), squeeze=False)
    for r in range(n):
        maps = [fields[k][r][var_index, level_index] for k in ("truth", "model", "climatology")]
        lo, hi = min(m.min() for m in maps), max(m.max() for m in maps)
        for c, (title, m) in enumerate(zip(("truth", "model", "climatology"), maps)):
            im = axes[r, c].imshow(m, origin="lower", vmin=lo, vmax=hi, cmap="viridis", aspect="auto", extent=extent)
            axes[r, c].set_title(f"sample {samples[r]}: {title}", fontsize=9)
            fig.colorbar(im, ax=axes[r, c], label=unit)
        err = maps[1] - maps[0]
        lim = float(np.abs(err).max()) or 1.0
        im = axes[r, 3].imshow(err, origin="lower", vmin=-lim, vmax=lim, cmap="RdBu_r", aspect="auto", extent=extent)
        axes[r, 3].set_title("model - truth", fontsize=9)
        fig.colorbar(im, ax=axes[r, 3], label=unit)
    fig.suptitle(f"{var_name} at {level_label} (x: longitude, y: latitude{'' if extent else ', grid indices'})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
