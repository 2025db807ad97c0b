"""Collect: ingest named sources (what `astrobio ingest` accepts) into a new version.

The version is allocated `collecting` first; the store is written by the ingest's atomic
writer (temporary sibling, manifest last, rename) under the registry's store root as
`<name>/v<N>.zarr`; the full scan and digest check run; only then does the version become
`ready`. A collect that fails is recorded `failed`; one whose process dies stays `collecting`
until the next server start marks it failed (`Registry.fail_stale`). Never `ready` half-written.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._home import data_home
from ..errors import ConfigError
from ..ingest.catalogue import ingest_catalogue
from ..ingest.climate import ingest_climate
from ..ingest.metabolic import ingest_metabolic
from .core import Registry

__all__ = ["CollectSpec", "collect_into", "store_root", "confine", "FORMATS"]

FORMATS = ("climate", "catalogue", "metabolic")
CollectSpec = Mapping[str, Any]


def store_root() -> Path:
    """Where collected versions are written: $ASTROBIO_HOME/registry/stores."""
    return data_home() / "registry" / "stores"


def confine(path: str, roots: list[Path]) -> Path:
    """`path` resolved (symlinks followed) when it lies inside one of `roots`; ConfigError
    otherwise. Relative paths are taken relative to the first root."""
    if not roots:
        raise ConfigError("collect is disabled: no source roots are configured (astrobio serve --source-root DIR)")
    if not isinstance(path, str) or not path or "\0" in path:
        raise ConfigError("source path must be a non-empty string")
    raw = Path(path)
    resolved = (raw if raw.is_absolute() else roots[0] / raw).resolve()
    if not any(resolved.is_relative_to(r.resolve()) for r in roots):
        raise ConfigError(f"source path {path!r} is outside the allowed source roots")
    if not resolved.exists():
        raise ConfigError(f"source path {path!r} does not exist")
    return resolved


def sources_of(spec: CollectSpec) -> dict[str, str]:
    """Field name -> source path of every source the spec names (for confinement checks)."""
    fmt = spec["format"]
    if fmt == "climate":
        return {f"runs.{k}": v for k, v in spec["runs"].items()}
    if fmt == "metabolic":
        return {f"models.{k}": v for k, v in spec["models"].items()}
    return {"source": spec["source"]}


def _ingest(spec: CollectSpec, paths: Mapping[str, Path], out: Path) -> Path:
    fmt = spec["format"]
    if fmt == "climate":
        runs = {k: paths[f"runs.{k}"] for k in spec["runs"]}
        return Path(ingest_climate(runs, out, variables=list(spec["variables"]), split=spec.get("split") or None,
                                   units=spec.get("units") or {}, kind=spec.get("kind", "simulation"), name=spec["dataset"]))
    if fmt == "catalogue":
        return Path(ingest_catalogue(paths["source"], out, schema=spec.get("schema", "nasa")))
    if fmt == "metabolic":
        return Path(ingest_metabolic({k: paths[f"models.{k}"] for k in spec["models"]}, out))
    raise ConfigError(f"unknown format {fmt!r}; use one of {FORMATS}")


def collect_into(reg: Registry, spec: CollectSpec, number: int, roots: list[Path], *, root: Path | None = None,
                 progress: Callable[[str], None] = lambda _msg: None) -> dict[str, Any]:
    """Ingest `spec`'s sources into version `number` (already allocated `collecting`) of
    dataset `spec["dataset"]`, check it and make it `ready`; `failed` on any error (re-raised)."""
    name = spec["dataset"]
    out = (root or store_root()) / name / f"v{number}.zarr"
    try:
        paths = {field: confine(p, roots) for field, p in sources_of(spec).items()}
        if out.exists():  # a leftover of an earlier, dead registry: never reuse its bytes
            shutil.rmtree(out)
        progress("ingesting")
        _ingest(spec, paths, out)
    except BaseException as e:
        reg.fail_version(name, number, f"{type(e).__name__}: {e}")
        shutil.rmtree(out, ignore_errors=True)
        raise
    progress("verifying")
    return reg.complete(name, number, out)
