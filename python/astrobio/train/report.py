"""End-of-run outputs shared by every model: the number format of the tables, a plain-text
table, summary.txt + summary.json (written atomically), JSON-safe values, and the loss /
validation-metric curves. Each task writes its own table and any other plots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fsutil import atomic_write
from ..errors import DependencyError

__all__ = ["fmt", "rows_table", "write_summary", "write_json", "jsonable", "pyplot", "save_figure", "plot_metric_curves"]


def fmt(x: float) -> str:
    """A table cell: 4 significant digits, scientific below 1e-3."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"


def jsonable(x: Any) -> Any:
    """`x` as plain JSON values (numpy arrays and scalars as lists and numbers, other objects as str)."""
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def rows_table(head: str, rows: Sequence[tuple[str, ...]]) -> str:
    """`head` over a plain-text table of `rows` (the first row is the header; the first two
    columns left-aligned, the others right-aligned)."""
    n = max(len(r) for r in rows)
    padded = [tuple(r) + ("",) * (n - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in padded) for i in range(n)]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in padded]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return head + "\n" + "\n".join(lines)


def write_json(path: Path, value: Any) -> None:
    """`value` as indented JSON at `path`, atomically (floats that JSON lacks as float)."""
    with atomic_write(path, "w") as f:
        f.write(json.dumps(value, indent=1, default=float))


def write_summary(run_dir: Path, summary: dict[str, Any], table: str) -> str:
    """summary.txt (the table) and summary.json, each written atomically."""
    with atomic_write(run_dir / "summary.txt", "w") as f:
        f.write(table + "\n")
    write_json(run_dir / "summary.json", summary)
    return table


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; DependencyError naming the fix when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise DependencyError(f"plots need matplotlib ({e}); install it with `pip install matplotlib`, "
                              "or turn plots off with --set trainer.plots=false") from None
    return plt


def save_figure(fig: Any, path: Path, dpi: int) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    plt = pyplot()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return path


def plot_metric_curves(history: dict[str, Any], path: Path, *, metric: str, label: str,
                       baseline: float | None = None, baseline_label: str = "baseline", loss_label: str = "loss",
                       val_loss_label: str = "val loss", log_loss: bool = False) -> Path:
    """Training loss per step and epoch, and the monitored validation metric per epoch beside
    the baseline's value (any model; `metric` is the key of the history's epoch dicts)."""
    plt = pyplot()
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
    return save_figure(fig, path, dpi=110)
