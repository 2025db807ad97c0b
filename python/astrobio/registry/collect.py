"""Collect: ingest named sources (what `astrobio ingest` accepts) into a new version.

The spec is a collect body: {"format": NAME, "dataset": NAME, **the format's request fields}.
Everything format-specific comes from the source-format registry (`astrobio.ingest.formats`):
its request model, which fields are source paths, its ingest function and the store kind it
writes. This module names no format.

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
from ..errors import ConfigError, IntegrityError
from ..ingest.formats import IngestContext, SourceFormat, get_format, parse_request, sources_of as request_sources, with_sources
from ..stores import kind_of
from .core import Registry

__all__ = ["CollectSpec", "collect_into", "store_root", "confine", "sources_of", "request_of"]

CollectSpec = Mapping[str, Any]
#: the collect body's own fields; every other field belongs to the format's request model
BODY_FIELDS = ("format", "dataset")


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


def request_of(spec: CollectSpec) -> tuple[SourceFormat, Any]:
    """The spec's source format and its validated request (ConfigError for an unknown format
    or a bad field)."""
    fmt = get_format(str(spec.get("format")))
    return fmt, parse_request(fmt, {k: v for k, v in spec.items() if k not in BODY_FIELDS})


def sources_of(spec: CollectSpec) -> dict[str, str]:
    """Field path -> source path of every source the spec names (for confinement checks)."""
    return request_sources(request_of(spec)[1])


def precheck(spec: CollectSpec, paths: Mapping[str, Path]) -> None:
    """Run the spec's source-format pre-check (`SourceFormat.precheck`) on its sources, `paths`
    (field -> source already confined to the source roots): ConfigError when the request cannot
    give a store (e.g. its filters select nothing)."""
    fmt, request = request_of(spec)
    if fmt.precheck is None:
        return
    fmt.precheck(with_sources(request, paths), IngestContext(dataset=str(spec["dataset"]), caller="api"))


def _ingest(spec: CollectSpec, paths: Mapping[str, Path], out: Path) -> Path:
    fmt, request = request_of(spec)
    written = Path(fmt.ingest(with_sources(request, paths), out, IngestContext(dataset=str(spec["dataset"]), caller="api")))
    kind = kind_of(written).name
    if kind != fmt.kind:
        raise IntegrityError(f"source format {fmt.name!r} declares {fmt.kind!r} stores but wrote a {kind!r} store", path=str(written))
    return written


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
