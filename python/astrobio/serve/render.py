"""The pages' templates (serve/templates, jinja2, autoescaped) and the helpers that make
report values readable: nested dicts and lists become short key: value lines or definition
lists, never raw JSON; numbers get 4 significant digits."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

__all__ = ["render", "cell", "tree", "fmt"]

TEMPLATES = Path(__file__).parent / "templates"
_TRAINING = ("epochs_run", "best_epoch", "best_score", "monitor", "wall_time_s")


def fmt(x: Any) -> str:
    """A value as a person reads it: 4 significant digits, integers whole, booleans yes/no."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.4g}" if math.isfinite(x) else str(x)
    return "—" if x is None else str(x)


def cell(x: Any, depth: int = 0) -> Markup:
    """A report value for a table cell: `key: value` lines (nested ones inline in braces),
    lists comma-separated or one item a line; an empty value is 'none'."""
    if isinstance(x, dict):
        if not x:
            return Markup('<span class="muted">none</span>')
        parts = [Markup('<span class="k">{}</span>: {}').format(k, cell(v, depth + 1)) for k, v in x.items()]
        sep = Markup("; ") if depth else Markup("<br>")
        inner = sep.join(parts)
        return Markup('<span class="kv">{}</span>').format(inner) if not depth else Markup("({})").format(inner)
    if isinstance(x, (list, tuple)):
        if not x:
            return Markup('<span class="muted">none</span>')
        items = [cell(v, depth + 1) for v in x[:20]]
        more = Markup(" … and {} more").format(len(x) - 20) if len(x) > 20 else Markup("")
        sep = Markup("<br>") if any(isinstance(v, (dict, list)) for v in x) else Markup(", ")
        return sep.join(items) + more
    return escape(fmt(x))


def tree(x: Any) -> Markup:
    """A nested value (provenance) as definition lists; a long branch (the per-run settings of
    a simulation campaign) folds into a <details> element, open on a click, no script."""
    if isinstance(x, dict):
        if not x:
            return Markup('<span class="muted">none</span>')
        return Markup("<dl>{}</dl>").format(Markup("").join(Markup("<dt>{}</dt><dd>{}</dd>").format(k, _fold(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        if x and all(not isinstance(v, (dict, list)) for v in x):
            return escape(", ".join(fmt(v) for v in x))
        return Markup("<ul>{}</ul>").format(Markup("").join(Markup("<li>{}</li>").format(_fold(v)) for v in x)) if x else Markup("none")
    return Markup("<code>{}</code>").format(fmt(x)) if isinstance(x, str) and ("/" in x or ":" in x) else escape(fmt(x))


def _fold(v: Any) -> Markup:
    inner = tree(v)
    if isinstance(v, (dict, list)) and len(str(v)) > 400:
        return Markup("<details><summary>{} entries</summary>{}</details>").format(len(v), inner)
    return inner


def count(split: Any, what: str) -> str:
    """Runs or samples (rows) of one split record, whatever the kind names it."""
    if not isinstance(split, dict):
        return fmt(split)
    keys = {"runs": ("runs", "n_runs", "objects"), "samples": ("samples", "n_samples", "rows", "n_rows", "networks")}[what]
    for k in keys:
        if k in split:
            v = split[k]
            return fmt(len(v) if isinstance(v, (list, dict)) else v)
    return "—"


def total(splits: Any) -> str:
    if not isinstance(splits, dict) or not splits:
        return "—"
    n = [count(s, "samples") for s in splits.values()]
    try:
        return fmt(sum(int(x.replace(",", "")) for x in n))
    except ValueError:
        return "—"


def headline(held: Any, limit: int = 8) -> dict[str, Any]:
    """The top-level held-out numbers (e.g. model.rmse, baseline.rmse, skill), not every
    per-variable or per-run breakdown (those are in the API's version record)."""
    if not isinstance(held, dict):
        return {}
    top = {k: v for k, v in held.items() if k.count(".") <= 1 and not k.startswith(("runs.", "physics."))}
    return dict(list(top.items())[:limit])


def training(metrics: dict[str, Any] | None) -> dict[str, Any]:
    return {k: metrics[k] for k in _TRAINING if metrics and k in metrics}


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.ChainableUndefined)
    env.globals.update(cell=cell, tree=tree, fmt=fmt, count=count, total=total, training=training, headline=headline)
    return env


def render(name: str, **context: Any) -> str:
    """Render template `name` with `context` (and the helpers above)."""
    return _env().get_template(name).render(**context)
