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

import importlib
import importlib.metadata
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "Description", "StoreKind", "expectation", "get_kind", "histogram", "kind_names",
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
_REGISTRY: dict[str, StoreKind | str] = dict(_BUILTIN)
_FORMATS: dict[str, str] = {**_BUILTIN_FORMATS, **{n: n for n in _BUILTIN}}


def _check_kind(kind: Any) -> StoreKind:
    name = getattr(kind, "name", None)
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"a store kind's name must be letters, digits, '-' or '_', got {name!r}")
    if not isinstance(kind, StoreKind):
        missing = [m for m in ("formats", "open", "verify", "check", "digest", "describe", "statistics", "histograms",
                               "expectations") if not hasattr(kind, m)]
        raise ConfigError(f"store kind {name!r} lacks {', '.join(missing)} (see astrobio.stores.kinds.StoreKind)")
    return kind


def register_kind(kind: StoreKind) -> StoreKind:
    """Register (or replace) a store kind under its `name`, with every format it declares;
    returns it (usable as a class decorator's result holder)."""
    kind = _check_kind(kind)
    for fmt, owner in list(_FORMATS.items()):
        if owner == kind.name:
            del _FORMATS[fmt]
    _REGISTRY[kind.name] = kind
    for fmt in {kind.name, *kind.formats}:
        _FORMATS[fmt] = kind.name
    return kind


def unregister_kind(name: str) -> None:
    """Forget a registered kind (a built-in one goes back to its built-in definition)."""
    _REGISTRY.pop(name, None)
    for fmt in [f for f, owner in _FORMATS.items() if owner == name]:
        del _FORMATS[fmt]
    if name in _BUILTIN:
        _REGISTRY[name] = _BUILTIN[name]
        _FORMATS.update({f: n for f, n in _BUILTIN_FORMATS.items() if n == name} | {name: name})


def _load_entry_points() -> None:
    """Kinds of installed packages (entry point group `astrobio.store_kinds`); registered names win."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            register_kind(_resolve(ep.value))


def _resolve(target: StoreKind | str) -> StoreKind:
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "name")):
        obj = obj()
    return _check_kind(obj)


def kind_names() -> list[str]:
    """The registered kinds' names (built-in, registered, installed entry points), sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def _unknown(what: str) -> ConfigError:
    return ConfigError(f"unknown store {what}; known kinds: {', '.join(kind_names())} "
                       f"(add one with astrobio.stores.kinds.register_kind or the {ENTRY_POINT_GROUP} entry points)")


def get_kind(name: str) -> StoreKind:
    """The kind called `name`; ConfigError (one line, naming the known kinds) when none is."""
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise _unknown(f"kind {name!r}")
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        entry = _REGISTRY[name] = _resolve(entry)
    return entry


def kind_of_format(fmt: Any) -> StoreKind:
    """The kind whose stores declare manifest format `fmt` (its name or an older name);
    ConfigError when no registered kind does."""
    if not isinstance(fmt, str):
        raise _unknown(f"format {fmt!r}")
    if fmt not in _FORMATS:
        _load_entry_points()
    if fmt not in _FORMATS:
        raise _unknown(f"format {fmt!r}")
    return get_kind(_FORMATS[fmt])
