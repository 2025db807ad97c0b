"""Store kinds: one object per kind carries everything kind-specific, and a registry maps
names to them (xarray's backends are the model: one `BackendEntrypoint` per backend, found
through an entry-point group; xarray itself names none).

A kind has ONE name ("cube", "table", "graph"): the registry's `kind`, the label `astrobio
validate` prints, the word the docs use, and the `format` a new kind's manifest declares.
Manifests written before kinds had one name ("astrobio.store", "astrobio.table",
"astrobio.graphs") still open: a kind lists them in `formats`, beside its name.

The registry, `astrobio validate`, the quality report, lineage and the trainer dispatch through
`get_kind` / `kind_of_format` and name no kind. A third party adds one with

    from astrobio.stores.kinds import register_kind
    register_kind(MyKind())                   # an object satisfying StoreKind

or, for an installed package, an entry point in the group `astrobio.store_kinds`
(`mykind = "mypkg.kind:KIND"`: the kind object, or a zero-argument factory returning it),
loaded the first time a name or format is not found. See docs/add-a-store-kind.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._plugins import Plugins, check_plugin_name
from ..errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "Description", "StoreKind", "expectation", "get_kind", "histogram", "kind_names",
           "kind_of_format", "moments", "register_kind", "unregister_kind", "HIST_BINS"]

ENTRY_POINT_GROUP = "astrobio.store_kinds"
HIST_BINS = 30


@dataclass
class Description:
    """What the registry records about a store of a kind: `splits` maps a split name to
    {"runs", "samples"} ("all" for kinds without splits), `summary` what a reader needs to
    know before opening it (format, counts, variable names...)."""

    splits: dict[str, dict[str, int]]
    summary: dict[str, Any]


@runtime_checkable
class StoreKind(Protocol):
    """What a store kind provides to the rest of astrobio. `location` is a local `Path` or
    an s3:// URL string (`astrobio.stores.location.store_location` makes one from user input);
    `manifest` the store's complete manifest."""

    #: the kind's one name: registry kind, `astrobio validate` label, docs word
    name: str
    #: every manifest "format" value a store of this kind may declare (its name, older names)
    formats: tuple[str, ...]

    def open(self, location: Path | str, *, verify: bool = True) -> Any:
        """The opened store (the kind's own reader object), its digests checked when `verify`.
        DataNotFoundError / IntegrityError when it is missing or damaged."""
        ...

    def verify(self, location: Path | str) -> tuple[bool, str]:
        """Open the store and check all of it; (ok, one-line summary). Raises AstrobioError
        when the store cannot be opened or its digests do not match."""
        ...

    def check(self, location: Path | str) -> dict[str, Any]:
        """Everything a registered version must pass (IntegrityError naming the first problem);
        returns the kind's scan report for the quality report ({} when it has none)."""
        ...

    def digest(self, manifest: Mapping[str, Any]) -> str:
        """The content digest of a manifest of this kind."""
        ...

    def describe(self, location: Path | str, manifest: Mapping[str, Any]) -> Description:
        """Split counts and the load summary, from the manifest (no data read)."""
        ...

    def statistics(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        """Per variable: {count, mean, std, min, max} (the quality report's `variables`)."""
        ...

    def histograms(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, list[float]]]:
        """Per variable: {edges, counts} of its raw values (see `histogram`)."""
        ...

    def expectations(self, location: Path | str, manifest: Mapping[str, Any], scan: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The kind's own quality expectations (`expectation(...)` results): leakage between
        splits, duplicates, its scan... The registry adds the shared ones (digest, values in
        range, split counts, drift)."""
        ...


def expectation(name: str, success: bool, observed: Any = None, expected: Any = None, details: Any = None) -> dict[str, Any]:
    """One quality-report result, shaped like a great-expectations validation result."""
    return {"expectation": name, "success": bool(success), "observed_value": observed, "expected": expected, "details": details or {}}


def moments(values: np.ndarray) -> dict[str, float]:
    """{count, mean, std, min, max} of the finite values (count 0 and NaNs when none)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"count": 0, "mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {"count": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}


def histogram(values: np.ndarray) -> dict[str, list[float]]:
    """{edges, counts}: `HIST_BINS` equal bins over the finite values (empty lists when none)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(v, bins=HIST_BINS)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


#: the built-in kinds: name -> "module:attribute", imported on first use (so `import astrobio`
#: loads no kind's libraries, and a kind's module may import the reader)
_BUILTIN: dict[str, str] = {
    "cube": "astrobio.stores.cube_kind:KIND",
    "table": "astrobio.stores.table:KIND",
    "graph": "astrobio.stores.graph:KIND",
    "observation": "astrobio.stores.observation:KIND",
}
#: the manifest formats of the built-in kinds (older names), known before their modules load
_BUILTIN_FORMATS: dict[str, str] = {"astrobio.store": "cube", "astrobio.table": "table", "astrobio.graphs": "graph"}
#: manifest format -> kind name, for every kind known so far
_FORMATS: dict[str, str] = {**_BUILTIN_FORMATS, **{n: n for n in _BUILTIN}}


def _check_kind(kind: Any) -> StoreKind:
    name = check_plugin_name(getattr(kind, "name", None), "store kind")
    if not isinstance(kind, StoreKind):
        missing = [m for m in ("formats", "open", "verify", "check", "digest", "describe", "statistics", "histograms",
                               "expectations") if not hasattr(kind, m)]
        raise ConfigError(f"store kind {name!r} lacks {', '.join(missing)} (see astrobio.stores.kinds.StoreKind)")
    return kind


def _load_kind(name: str, obj: Any) -> StoreKind:
    """The kind a "module:attribute" path names: the object, or a class / zero-argument factory."""
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "name")):
        obj = obj()
    kind = _check_kind(obj)
    if kind.name != name:
        raise ConfigError(f"the store kind registered as {name!r} calls itself {kind.name!r}")
    return kind


def _claim_formats(kind: StoreKind) -> None:
    for fmt in [f for f, owner in _FORMATS.items() if owner == kind.name]:
        del _FORMATS[fmt]
    for fmt in {kind.name, *kind.formats}:
        _FORMATS[fmt] = kind.name


#: an installed kind is imported as soon as its entry point is read: only the object knows its formats
KINDS: Plugins[StoreKind] = Plugins("store kind", ENTRY_POINT_GROUP, _BUILTIN, _load_kind, known="known kinds",
                                    adder="astrobio.stores.kinds.register_kind",
                                    on_install=lambda name: _claim_formats(KINDS.get(name)))


def register_kind(kind: StoreKind) -> StoreKind:
    """Register (or replace) a store kind under its `name`, with every format it declares;
    returns it (usable as a class decorator's result holder)."""
    kind = _check_kind(kind)
    KINDS.register(kind.name, kind)
    _claim_formats(kind)
    return kind


def unregister_kind(name: str) -> None:
    """Forget a registered kind (a built-in one goes back to its built-in definition)."""
    KINDS.unregister(name)
    for fmt in [f for f, owner in _FORMATS.items() if owner == name]:
        del _FORMATS[fmt]
    if name in _BUILTIN:
        _FORMATS.update({f: n for f, n in _BUILTIN_FORMATS.items() if n == name} | {name: name})


def kind_names() -> list[str]:
    """The registered kinds' names (built-in, registered, installed entry points), sorted."""
    return KINDS.names()


def get_kind(name: str) -> StoreKind:
    """The kind called `name`; ConfigError (one line, naming the known kinds) when none is."""
    return KINDS.get(name)


def kind_of_format(fmt: Any) -> StoreKind:
    """The kind whose stores declare manifest format `fmt` (its name or an older name);
    ConfigError when no registered kind does."""
    if isinstance(fmt, str) and fmt not in _FORMATS:
        KINDS.load_entry_points()
    if not isinstance(fmt, str) or fmt not in _FORMATS:
        raise KINDS.unknown(f"store format {fmt!r}")
    return get_kind(_FORMATS[fmt])
