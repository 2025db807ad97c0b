"""Climate runs from NetCDF or zarr (GCM output or reanalysis) into an astrobio store, via xarray.

One run per simulation (a NetCDF file, a folder of NetCDF files merged along time, or a zarr
group), one sample per time step. Coordinates are checked the way weather/climate ML pipelines
check them (a regular latitude-longitude grid, latitudes in [-90, 90] and monotonic, longitudes
in range, levels monotonic, units present, no all-NaN variable) and the data is optionally
interpolated onto a target grid.

Each variable's physical valid range, recorded in the manifest with where it came from
(`range_source`): given by the caller ("cli" or "api"), else the CF default for its
`standard_name` and units ("cf-default:<standard_name>", `ingest.cf`), else the default for its
name ("name-default:<name>", `DEFAULT_RANGES`), else unbounded ("none").

Rotated-pole, projected and curvilinear grids are refused with one line naming the coordinate
found: the store format and the models assume a regular latitude-longitude grid (1-D `lat` and
`lon`), and regridding belongs to a tool that knows the projection (cdo, xESMF).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

import xarray as xr

from .._version import __version__
from ..errors import ConfigError, IntegrityError
from ..stores.cube import Variable
from ..stores._remote import name_of, store_location
from ..stores.cube_writer import StoreWriter
from ._provenance import command_line, inputs_digest, sources_record, tool_versions, up_to_date
from .cf import CF_RANGES, cf_default, example_units
from .netcdf import open_netcdf
from .zarr_input import is_zarr, open_zarr

__all__ = ["Grid", "ingest_climate", "load_run", "DEFAULT_RANGES", "valid_range", "Caller"]

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


#: Who is calling, so hints are written in the caller's own syntax.
Caller = Literal["api", "cli"]


def load_run(source: Path) -> tuple[xr.Dataset, list[Path]]:
    """Open a run: a zarr group (a folder with zarr.json, .zgroup or .zmetadata), one NetCDF
    file, or every *.nc file of a folder merged by coordinates."""
    return open_zarr(source) if is_zarr(source) else open_netcdf(source)


def _check_regular_grid(ds: Any, names: Sequence[str]) -> None:
    """Refuse rotated-pole, projected and curvilinear grids, naming what was found."""
    for n in names:
        if n not in ds.data_vars:
            continue
        da = ds[n]
        gm = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
        if gm:
            gm_name = str(gm).split(":")[0].split()[0]
            kind = ds[gm_name].attrs.get("grid_mapping_name", "unknown") if gm_name in ds.variables else "unknown"
            if kind != "latitude_longitude":
                raise IntegrityError(
                    f"variable {n!r} is on a {kind} grid (coordinates {'/'.join(map(str, da.dims[-2:]))} with "
                    f"grid_mapping {gm_name!r}); astrobio stores need a regular latitude-longitude grid: regrid "
                    f"first (e.g. cdo remapbil,r144x73 in.nc out.nc)")
        for c in da.coords.values():
            if c.ndim == 2 and (c.attrs.get("standard_name") in ("latitude", "longitude") or c.name in LAT_NAMES[:2] + LON_NAMES[:2]):
                raise IntegrityError(
                    f"variable {n!r} is on a curvilinear grid (2-D coordinate {c.name!r} over {'/'.join(map(str, c.dims))}); "
                    f"astrobio stores need a regular latitude-longitude grid: regrid first (e.g. cdo remapbil,r144x73 in.nc out.nc)")


def _units_hint(name: str, standard_name: str | None, caller: Caller) -> str:
    example = example_units(standard_name) or "UNITS"
    if caller == "cli":
        return f"pass them with --units {name}={example}"
    return f"pass units={{{name!r}: {example!r}}}"


def _range_hint(name: str, caller: Caller) -> str:
    return f"--range {name}=LO:HI" if caller == "cli" else f"valid_ranges={{{name!r}: (lo, hi)}}"


def resolve_range(name: str, standard_name: str | None, units: str, given: Mapping[str, tuple[float | None, float | None]],
                  caller: Caller) -> tuple[tuple[float | None, float | None], str]:
    """(valid range, range_source) of one variable, by the rule in the module docstring."""
    if name in given:
        return tuple(given[name]), caller  # type: ignore[return-value]
    cf = cf_default(standard_name, units)
    if cf is not None:
        return cf, f"cf-default:{standard_name}"
    if name in DEFAULT_RANGES:
        return DEFAULT_RANGES[name], f"name-default:{name}"
    return (None, None), "none"


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


def _cube(ds: Any, names: Sequence[str], grid: Grid, units: Mapping[str, str],
          caller: Caller = "api") -> tuple[np.ndarray, dict[str, Any], list[str]]:
    """[T, V, L, H, W] float32 plus coordinates and units of the selected variables."""
    _check_regular_grid(ds, names)
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
            raise IntegrityError(f"variable {n!r} has no units attribute; {_units_hint(n, da.attrs.get('standard_name'), caller)}")
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
    origin: str = "simulation",
    provenance: Mapping[str, Any] | None = None,
    name: str = "",
    caller: Caller = "api",
    shard_samples: int | None = None,
) -> Path | str:
    """Ingest climate runs (run id -> NetCDF file, folder of NetCDF files, or zarr group) into
    the store at `out` (a directory or an s3:// URL).

    `valid_ranges` gives variables' physical ranges (inclusive, None for an open side); the
    others get the CF default for their standard name and units, or the name default, or none
    (each recorded as the variable's `range_source`). `origin` is "simulation" or "observation"
    and is recorded (as the provenance's "kind", the field's name in every existing store).
    `caller` ("api" or "cli") only sets the syntax of hints in errors.
    `shard_samples` packs that many consecutive samples into one object (StoreWriter; for
    small samples on object storage, docs/object-storage.md).
    Re-running on unchanged inputs returns the existing store untouched. Returns the store path.
    """
    if origin not in ("simulation", "observation"):
        raise ConfigError(f"origin must be 'simulation' or 'observation', not {origin!r}")
    if not runs:
        raise ConfigError("no runs given")
    out = store_location(out)
    units = dict(units or {})
    given = dict(valid_ranges or {})
    for v, (lo, hi) in given.items():
        if (lo is not None and not np.isfinite(lo)) or (hi is not None and not np.isfinite(hi)) or (
                lo is not None and hi is not None and lo > hi):
            raise ConfigError(f"valid range of {v!r} must be finite with LO <= HI, got [{lo}, {hi}]")
    opened = {rid: load_run(Path(src)) for rid, src in runs.items()}
    sources = sources_record(f for _, files in opened.values() for f in files)
    options = {"variables": list(variables), "grid": [grid.levels, grid.lat, grid.lon], "split": split,
               "units": units, "ranges": {v: given.get(v) for v in variables},
               "range_defaults": {"cf": CF_RANGES, "names": DEFAULT_RANGES}, "kind": origin, "runs": {k: str(v) for k, v in runs.items()}}
    if shard_samples:  # only when set, so the digest of an unsharded ingest is unchanged
        options["shard_samples"] = int(shard_samples)
    digest = inputs_digest(sources, options, __version__)
    if up_to_date(out, digest):
        log.info("%s is up to date with its inputs; nothing to do", out)
        return out
    writer: StoreWriter | None = None
    coords0: dict[str, Any] = {}
    try:
        for rid, (ds, files) in opened.items():
            try:
                cube, coords, var_units = _cube(ds, variables, grid, units, caller)
            except IntegrityError as e:
                raise IntegrityError(e.reason, run=rid, path=str(files[0] if len(files) == 1 else Path(runs[rid]))) from None
            if writer is None:
                vs = []
                for n, u in zip(variables, var_units):
                    rng, source = resolve_range(n, ds[n].attrs.get("standard_name"), u, given, caller)
                    vs.append(Variable(n, u, rng, str(ds[n].attrs.get("long_name", "")), range_source=source))
                coords0 = {k: v for k, v in coords.items() if k != "time"}
                writer = StoreWriter(out, variables=vs, sample_shape=cube.shape[1:], coords=coords0, name=name or name_of(out),
                                     shard_samples=shard_samples,
                                     provenance={"kind": origin, "sources": sources, "command": command_line(), "inputs_digest": digest,
                                                 "tools": tool_versions("xarray", "netCDF4", "numpy"), **dict(provenance or {})})
            elif {k: v for k, v in coords.items() if k != "time"} != coords0:
                raise IntegrityError("grid differs from the first run's; pass a target grid to interpolate onto", run=rid)
            try:
                writer.add_run(rid, cube, attrs={"time": coords.get("time", []), "source": str(runs[rid])})
            except IntegrityError as e:
                if "outside the valid range" not in e.reason:
                    raise
                bad = next((v for v in writer.variables if f"variable {v.name!r}" in e.reason), None)
                hint = f" (range from {bad.range_source}; to change it: {_range_hint(bad.name, caller)})" if bad else ""
                raise IntegrityError(e.reason + hint, run=e.run, sample=e.sample, chunk=e.chunk, path=e.path) from None
        assert writer is not None
        return writer.commit(split)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        for ds, _ in opened.values():
            ds.close()
