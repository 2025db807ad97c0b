"""zarr input for climate ingest (xarray.open_zarr): much model output and reanalysis now ships
as zarr (v2 or v3, consolidated or not). One run = one zarr group."""

from __future__ import annotations

import json
from pathlib import Path

import xarray as xr

from ..errors import IntegrityError, first_line

__all__ = ["is_zarr", "open_zarr"]

#: Files that mark a directory as a zarr group: v3 metadata, v2 group, v2 consolidated.
MARKERS = ("zarr.json", ".zgroup", ".zmetadata")


def is_zarr(source: Path) -> bool:
    """Whether `source` is a directory holding a zarr group (rather than a folder of .nc files)."""
    return source.is_dir() and any((source / m).is_file() for m in MARKERS)


def open_zarr(source: Path) -> tuple[xr.Dataset, list[Path]]:
    """Open the zarr group at `source` without dask (values are read when the ingest asks for
    them); returns the dataset and every file of the group (for the provenance digests)."""
    try:
        consolidated = (source / ".zmetadata").is_file() or _v3_consolidated(source)
        ds = xr.open_zarr(source, chunks=None, consolidated=consolidated, decode_timedelta=False)
    except (OSError, ValueError, KeyError, TypeError) as e:  # json.JSONDecodeError is a ValueError
        raise IntegrityError(f"cannot read zarr: {first_line(e)}", path=str(source)) from e
    files = sorted(p for p in source.rglob("*") if p.is_file())
    return ds, files


def _v3_consolidated(source: Path) -> bool:
    """Whether a zarr v3 group carries consolidated metadata (inside its zarr.json)."""
    meta = source / "zarr.json"
    return meta.is_file() and bool(json.loads(meta.read_text()).get("consolidated_metadata"))
