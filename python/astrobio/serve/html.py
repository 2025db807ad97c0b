"""The quality report as a server-rendered HTML page (templates/quality.html): expectation
table with readable cells, statistics, split counts, lineage, per-variable histograms and
drift bars as embedded PNGs (matplotlib, Agg). No JavaScript."""

from __future__ import annotations

import base64
import functools
import io
import json
import math
from typing import Any

from .render import render

__all__ = ["render_quality"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


@functools.lru_cache(maxsize=64)
def _plots(key: str, hist_json: str, drift_json: str) -> tuple[str, str]:
    """(histograms PNG, drift PNG) as base64; cached by version and report content."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    hists = {k: h for k, h in json.loads(hist_json).items() if h.get("counts")}
    hist_png = ""
    if hists:
        cols = min(4, len(hists))
        rows = math.ceil(len(hists) / cols)
        fig = Figure(figsize=(3.2 * cols, 2.4 * rows))
        for i, (name, h) in enumerate(hists.items()):
            ax = fig.add_subplot(rows, cols, i + 1)
            edges = h["edges"]
            ax.bar(edges[:-1], h["counts"], width=[b - a for a, b in zip(edges[:-1], edges[1:])], align="edge", color="#3b6ea8")
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        fig.tight_layout()
        hist_png = _png(fig)
    drift = json.loads(drift_json)
    drift_png = ""
    if drift.get("variables"):
        names = list(drift["variables"])
        mean = [_finite(drift["variables"][n]["mean_shift"]) for n in names]
        std = [_finite(drift["variables"][n]["std_shift"]) for n in names]
        fig = Figure(figsize=(max(4.0, 0.6 * len(names) + 2), 3))
        ax = fig.add_subplot(1, 1, 1)
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], mean, width=0.4, label="mean shift", color="#3b6ea8")
        ax.bar([i + 0.2 for i in x], std, width=0.4, label="std shift", color="#e08a2c")
        ax.axhline(drift["threshold"], color="#b00020", linestyle="--", label="threshold")
        ax.set_xticks(list(x), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("shift / previous std")
        ax.legend(fontsize=7)
        fig.tight_layout()
        drift_png = _png(fig)
    return hist_png, drift_png


def _finite(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else 10.0  # inf drawn as a tall bar


def render_quality(report: dict[str, Any], version: dict[str, Any], *, signed_in: bool = False) -> str:
    hist, drift = _plots(f"{version['ref']}|{version['digest']}", json.dumps(report.get("histograms", {}), sort_keys=True),
                         json.dumps(report.get("drift", {}), sort_keys=True))
    return render("quality.html", r=report, s=report["statistics"], v=version, hist=hist, drift=drift, signed_in=signed_in)
