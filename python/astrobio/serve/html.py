"""The quality report as a server-rendered HTML page: expectation table, statistics, split
counts, lineage, per-variable histograms and drift bars as embedded PNGs (matplotlib, Agg).
No JavaScript."""

from __future__ import annotations

import base64
import functools
import io
import json
import math
from typing import Any

import jinja2

__all__ = ["render_quality"]

_TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quality {{ v.ref }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#126b12;font-weight:600}.fail{color:#b00020;font-weight:600}
code{font-size:.85rem;word-break:break-all}.badge{padding:.2rem .6rem;border-radius:.3rem;color:#fff}
.good{background:#1f7a1f}.bad{background:#b00020}img{max-width:100%}
</style></head><body>
<h1>{{ v.ref }} <span class="badge {{ 'good' if r.success else 'bad' }}">{{ 'passed' if r.success else 'failed' }}</span></h1>
<p>status <b>{{ v.status }}</b> &middot; kind {{ v.kind }} &middot; created {{ v.created }}<br>
digest <code>{{ v.digest }}</code><br>store <code>{{ v.uri }}</code></p>
<h2>Summary</h2>
<p>{{ s.successful_expectations }} of {{ s.evaluated_expectations }} expectations met ({{ s.success_percent }}%).</p>
<h2>Expectations</h2>
<table><tr><th>expectation</th><th>result</th><th>observed</th><th>expected</th><th>details</th></tr>
{% for e in r.results %}<tr><td>{{ e.expectation }}</td><td class="{{ 'ok' if e.success else 'fail' }}">{{ 'ok' if e.success else 'FAILED' }}</td>
<td><code>{{ e.observed_value | tojson }}</code></td><td><code>{{ e.expected | tojson }}</code></td><td><code>{{ e.details | tojson }}</code></td></tr>
{% endfor %}</table>
<h2>Splits</h2>
<table><tr><th>split</th><th>runs</th><th>samples</th></tr>
{% for k, c in r.splits.items() %}<tr><td>{{ k }}</td><td>{{ c.runs }}</td><td>{{ c.samples }}</td></tr>{% endfor %}</table>
<h2>Variables</h2>
<table><tr><th>variable</th><th>count</th><th>mean</th><th>std</th><th>min</th><th>max</th></tr>
{% for k, st in r.variables.items() %}<tr><td>{{ k }}</td><td>{{ st.count }}</td><td>{{ fmt(st.mean) }}</td><td>{{ fmt(st.std) }}</td><td>{{ fmt(st.min) }}</td><td>{{ fmt(st.max) }}</td></tr>{% endfor %}</table>
{% if hist %}<h3>Histograms</h3><img alt="per-variable histograms" src="data:image/png;base64,{{ hist }}">{% endif %}
<h2>Drift</h2>
{% if drift %}<p>Against {{ r.drift.previous }}; shifts in units of the previous std, flagged over {{ r.drift.threshold }}.</p>
<img alt="drift bars" src="data:image/png;base64,{{ drift }}">{% else %}<p>First version of this dataset: nothing to compare with.</p>{% endif %}
<h2>Provenance</h2><pre>{{ provenance }}</pre>
<h2>Runs trained on this version</h2>
{% if v.runs %}<table><tr><th>run</th><th>model</th><th>created</th></tr>{% for run in v.runs %}<tr><td><code>{{ run.run_dir }}</code></td><td>{{ run.model }}</td><td>{{ run.created }}</td></tr>{% endfor %}</table>
{% else %}<p>None recorded.</p>{% endif %}
</body></html>
""")


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)


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


def render_quality(report: dict[str, Any], version: dict[str, Any]) -> str:
    hist, drift = _plots(f"{version['ref']}|{version['digest']}", json.dumps(report.get("histograms", {}), sort_keys=True),
                         json.dumps(report.get("drift", {}), sort_keys=True))
    return _TEMPLATE.render(r=report, s=report["statistics"], v=version, hist=hist, drift=drift, fmt=_fmt,
                            provenance=json.dumps(version.get("provenance", {}), indent=2, default=str))
