"""Climate runs from NetCDF (GCM output or reanalysis) into an astrobio store, via xarray.

One run per simulation (a file, or a folder of files merged along time), one sample per time
step. Coordinates are checked the way weather/climate ML pipelines check them (latitudes in
[-90, 90] and monotonic, longitudes in range, levels monotonic, units present, no all-NaN
variable) and the data is optionally interpolated onto a target grid.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import xarray as xr

from .._version import __version__
from ..errors import ConfigError, IntegrityError
from ..stores.cube import Variable
from ..stores._remote import name_of, store_location
from ..stores.cube_writer import StoreWriter
from ._provenance import command_line, inputs_digest, sources_record, tool_versions, up_to_date
from .netcdf import open_netcdf

__all__ = ["Grid", "ingest_climate", "load_run", "DEFAULT_RANGES", "valid_range"]

log = logging.getLogger(__name__)

LAT_NAMES = ("lat", "latitude", "y")
LON_NAMES = ("lon", "longitude", "x")
LEVEL_NAMES = ("lev", "level", "plev", "pressure", "air_pressure", "pfull", "sigma", "height")
TIME_NAMES = ("time", "month", "t")

# Physical valid ranges wide enough for any plausible (exo)planet, tight enough to catch
# unit mistakes and corrupt values. Keyed by variable name; override per ingest. The one table
# of climate ranges: the default dataset's variables take theirs from here (`valid_range`).
DEFAULT_RANGES: dict[str, tuple[float | None, float | None]] = {
    "ta": (10.0, 1500.0), "air": (10.0, 1500.0), "ts": (10.0, 2000.0),
    "ua": (-500.0, 500.0), "va": (-500.0, 500.0), "uwnd": (-500.0, 500.0), "vwnd": (-500.0, 500.0),
    "hus": (0.0, 1.0), "wap": (-500.0, 500.0),
}


@dataclass(frozen=True)
class Grid:
    """Target grid to interpolate onto (None keeps the source's coordinate)."""

    levels: Sequence[float] | None = None
    lat: Sequence[float] | None = None
    lon: Sequence[float] | None = None


def valid_range(name: str) -> tuple[float | None, float | None]:
    """The default valid range of a climate variable; (None, None) (unbounded) when unknown."""
    return DEFAULT_RANGES.get(name, (None, None))


def _find(ds: Any, names: Sequence[str], what: str, required: bool = True) -> str | None:
    for n in names:
        if n in ds.coords or n in ds.dims:
            return n
    if required:
        raise IntegrityError(f"no {what} coordinate (looked for {', '.join(names)})")
    return None


def load_run(source: Path) -> tuple[xr.Dataset, list[Path]]:
    """Open a run: one NetCDF file, or every *.nc file of a folder merged by coordinates."""
    return open_netcdf(source)


def _check_coords(ds: Any, lat: str, lon: str, level: str | None) -> None:
    la = np.asarray(ds[lat].values, np.float64)
    if la.size == 0 or not np.all(np.isfinite(la)) or la.min() < -90 or la.max() > 90:
        raise IntegrityError(f"latitudes must lie within [-90, 90], found [{la.min()}, {la.max()}]")
    if la.size > 1 and not (np.all(np.diff(la) > 0) or np.all(np.diff(la) < 0)):
        raise IntegrityError("latitudes are not strictly monotonic")
    lo = np.asarray(ds[lon].values, np.float64)
    if lo.size == 0 or not np.all(np.isfinite(lo)) or lo.min() < -180 or lo.max() > 360:
        raise IntegrityError(f"longitudes must lie within [-180, 360], found [{lo.min()}, {lo.max()}]")
    if lo.size > 1 and not np.all(np.diff(lo) > 0) and not np.all(np.diff(lo) < 0):
        raise IntegrityError("longitudes are not strictly monotonic")
    if level is not None:
        lv = np.atleast_1d(np.asarray(ds[level].values, np.float64))
        if lv.size > 1 and not (np.all(np.diff(lv) > 0) or np.all(np.diff(lv) < 0)):
            raise IntegrityError("levels are not strictly monotonic")


def _cube(ds: Any, names: Sequence[str], grid: Grid, units: Mapping[str, str]) -> tuple[np.ndarray, dict[str, Any], list[str]]:
    """[T, V, L, H, W] float32 plus coordinates and units of the selected variables."""
    lat = _find(ds, LAT_NAMES, "latitude")
    lon = _find(ds, LON_NAMES, "longitude")
    level = _find(ds, LEVEL_NAMES, "level", required=False)
    time = _find(ds, TIME_NAMES, "time", required=False)
    _check_coords(ds, lat, lon, level)
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise IntegrityError(f"variables {missing} not in the source (it has {sorted(ds.data_vars)})")
    ds = ds[list(names)].sortby([lat, lon])
    if level is not None and level in ds.dims:
        ds = ds.sortby(level, ascending=False)  # top of atmosphere last: pressure decreasing
    interp = {}
    if grid.lat is not None:
        interp[lat] = np.asarray(grid.lat, np.float64)
    if grid.lon is not None:
        interp[lon] = np.asarray(grid.lon, np.float64)
    if grid.levels is not None:
        if level is None or level not in ds.dims:
            raise ConfigError("a target level grid was given but the source has no level dimension")
        interp[level] = np.asarray(grid.levels, np.float64)
    if interp:
        ds = ds.interp(interp, method="linear")
    out_units, arrays = [], []
    for n in names:
        da = ds[n]
        u = units.get(n) or da.attrs.get("units")
        if not u:
            raise IntegrityError(f"variable {n!r} has no units attribute; pass units={{{n!r}: ...}}")
        out_units.append(str(u))
        dims = [d for d in (time, level, lat, lon) if d is not None and d in da.dims]
        extra = [d for d in da.dims if d not in dims]
        if extra:
            raise IntegrityError(f"variable {n!r} has unexpected dimensions {extra}")
        da = da.transpose(*dims)
        x = np.asarray(da.values, np.float64)
        if time is None or time not in da.dims:
            x = x[None]
        if level is None or level not in da.dims:
            x = x[:, None]
        if not np.isfinite(x).any():
            raise IntegrityError(f"variable {n!r} is entirely NaN")
        arrays.append(x)
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise IntegrityError(f"variables have different shapes {sorted(shapes)}; interpolate them to one grid")
    cube = np.stack(arrays, axis=1)
    coords: dict[str, Any] = {
        "lat": {"values": np.asarray(ds[lat].values, float).tolist(), "units": "degrees_north"},
        "lon": {"values": np.asarray(ds[lon].values, float).tolist(), "units": "degrees_east"},
    }
    if level is not None:
        coords["level"] = {
            "name": level,
            "values": np.atleast_1d(np.asarray(ds[level].values, float)).tolist(),
            "units": str(ds[level].attrs.get("units", "")),
        }
    if time is not None and time in ds.dims:
        coords["time"] = [str(t) for t in np.asarray(ds[time].values)]
    return cube, coords, out_units


def ingest_climate(
    runs: Mapping[str, str | Path],
    out: str | Path,
    *,
    variables: Sequence[str],
    grid: Grid = Grid(),
    split: Mapping[str, Sequence[str]] | None = None,
    units: Mapping[str, str] | None = None,
    valid_ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
    kind: str = "simulation",
    provenance: Mapping[str, Any] | None = None,
    name: str = "",
) -> Path | str:
    """Ingest climate runs (run id -> NetCDF file or folder) into the store at `out` (a
    directory or an s3:// URL).

    `kind` is "simulation" or "observation" and is recorded. Re-running on unchanged inputs
    returns the existing store untouched. Returns the store path.
    """
    if kind not in ("simulation", "observation"):
        raise ConfigError(f"kind must be 'simulation' or 'observation', not {kind!r}")
    if not runs:
        raise ConfigError("no runs given")
    out = store_location(out)
    units = dict(units or {})
    ranges = {**DEFAULT_RANGES, **dict(valid_ranges or {})}
    opened = {rid: load_run(Path(src)) for rid, src in runs.items()}
    sources = sources_record(f for _, files in opened.values() for f in files)
    options = {"variables": list(variables), "grid": [grid.levels, grid.lat, grid.lon], "split": split,
               "units": units, "ranges": {v: ranges.get(v) for v in variables}, "kind": kind, "runs": {k: str(v) for k, v in runs.items()}}
    digest = inputs_digest(sources, options, __version__)
    if up_to_date(out, digest):
        log.info("%s is up to date with its inputs; nothing to do", out)
        return out
    writer: StoreWriter | None = None
    coords0: dict[str, Any] = {}
    try:
        for rid, (ds, files) in opened.items():
            try:
                cube, coords, var_units = _cube(ds, variables, grid, units)
            except IntegrityError as e:
                raise IntegrityError(e.reason, run=rid, path=str(files[0] if len(files) == 1 else Path(runs[rid]))) from None
            if writer is None:
                vs = [Variable(n, u, ranges.get(n, (None, None)), str(ds[n].attrs.get("long_name", ""))) for n, u in zip(variables, var_units)]
                coords0 = {k: v for k, v in coords.items() if k != "time"}
                writer = StoreWriter(out, variables=vs, sample_shape=cube.shape[1:], coords=coords0, name=name or name_of(out),
                                     provenance={"kind": kind, "sources": sources, "command": command_line(), "inputs_digest": digest,
                                                 "tools": tool_versions("xarray", "netCDF4", "numpy"), **dict(provenance or {})})
            elif {k: v for k, v in coords.items() if k != "time"} != coords0:
                raise IntegrityError("grid differs from the first run's; pass a target grid to interpolate onto", run=rid)
            writer.add_run(rid, cube, attrs={"time": coords.get("time", []), "source": str(runs[rid])})
        assert writer is not None
        return writer.commit(split)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        for ds, _ in opened.values():
            ds.close()
