"""Emulated fields as CF-compliant xarray datasets, and writing them (NetCDF or zarr, atomically).

Layout of a prediction (`fields_dataset`):

    dimensions   planet, level (sigma), lat, lon
    coordinates  planet (name), level / lat / lon with CF attributes, and one coordinate per
                 planet parameter along `planet` (units, long_name)
    variables    one per emulated variable (ta, ua, va, hus, wap) with units, standard_name,
                 long_name; an ensemble adds <name>_spread (the members' standard deviation,
                 CF modifier "standard_error") linked by ancillary_variables
    attributes   Conventions, title, source, history; the run (folder, checkpoints, members),
                 the training store and dataset lineage, the training ranges; for one planet
                 its parameters as planet_<name>

Each sample is the settled monthly-mean climate of a planet (the training months are samples
of one climate: circular orbits, zero obliquity), so there is no month axis.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from .._fsutil import fsync_dir, fsync_tree, swap_into_place, temp_sibling
from .._version import __version__
from ..errors import ConfigError
from ..stores.cube import Store
from ..stores.cube_coords import coordinate_attrs, standard_name

if TYPE_CHECKING:
    from .load import Emulator

__all__ = ["fields_dataset", "store_dataset", "write_dataset"]


def _grid(coords: dict[str, Any], shape: Sequence[int]) -> dict[str, Any]:
    """xarray coordinates (values, attrs) of level, lat, lon from a store's manifest coords."""
    out = {}
    for name, size in zip(("level", "lat", "lon"), shape):
        coord = coords.get(name)
        values = coord.get("values") if isinstance(coord, dict) else None
        if values is not None and len(values) == size:
            out[name] = xr.Variable((name,), np.asarray(values, np.float64), attrs=coordinate_attrs(name, coord))
    return out


def _var_attrs(v: Any) -> dict[str, str]:
    attrs = {"units": v.units, "long_name": v.long_name or v.name}
    if standard_name(v.name):
        attrs["standard_name"] = str(standard_name(v.name))
    return attrs


def fields_dataset(emulator: Emulator, mean: np.ndarray, spread: np.ndarray | None, rows: np.ndarray, names: Sequence[str],
                   descriptions: Sequence[dict[str, Any]] | None = None) -> xr.Dataset:
    """The CF dataset of predictions `mean` [B, V, L, H, W] (and the ensemble `spread`) for
    planets `names` with parameter rows `rows` [B, P] (physical units)."""
    dims = ("planet", "level", "lat", "lon")
    coords: dict[str, Any] = {"planet": xr.Variable(("planet",), np.asarray(list(names), dtype=object),
                                                    attrs={"long_name": "planet name"})}
    coords.update(_grid(emulator.coords, mean.shape[2:]))
    for j, p in enumerate(emulator.params):
        coords[p.name] = xr.Variable(("planet",), rows[:, j].astype(np.float64), attrs={"units": p.units, "long_name": p.long_name or p.name})
    data: dict[str, Any] = {}
    for i, v in enumerate(emulator.variables):
        attrs = _var_attrs(v)
        if spread is not None:
            attrs["ancillary_variables"] = f"{v.name}_spread"
        data[v.name] = xr.Variable(dims, mean[:, i], attrs=attrs)
        if spread is not None:
            s_attrs = {"units": v.units, "long_name": f"ensemble spread of {v.long_name or v.name} (standard deviation of "
                                                     f"{len(emulator.members)} members)"}
            if standard_name(v.name):
                s_attrs["standard_name"] = f"{standard_name(v.name)} standard_error"
            data[f"{v.name}_spread"] = xr.Variable(dims, spread[:, i], attrs=s_attrs)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    attrs: dict[str, Any] = {
        "Conventions": "CF-1.8",
        "title": "Emulated climate" + (f" of {names[0]}" if len(names) == 1 else f" of {len(names)} planets"),
        "source": f"astrobio {emulator.config.model.name} climate emulator"
                  + (f", mean of a {len(emulator.members)}-member ensemble" if emulator.ensemble else ""),
        "history": f"{now}: predicted by astrobio {__version__} from run {emulator.run_dir}",
        "astrobio_run": str(emulator.run_dir),
        "astrobio_checkpoints": json.dumps([str(p) for p in emulator.checkpoints]),
        "astrobio_members": len(emulator.members),
        "astrobio_training_store": str(emulator.lineage.get("store")),
        "astrobio_training_store_digest": str(emulator.lineage.get("store_digest")),
        "astrobio_lineage": json.dumps(emulator.lineage, default=str),
        "astrobio_training_range": json.dumps(emulator.training_range),
        "astrobio_extrapolated": json.dumps({n: emulator.out_of_range(r[None]) for n, r in zip(names, rows)
                                             if emulator.out_of_range(r[None])}),
    }
    if len(names) == 1:
        attrs["planet_name"] = str(names[0])
        attrs.update({f"planet_{p.name}": float(rows[0, j]) for j, p in enumerate(emulator.params)})
    if descriptions:
        attrs["planet_descriptions"] = json.dumps(list(descriptions), default=str)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def store_dataset(store: Store) -> xr.Dataset:
    """A cube store as a CF dataset with one data variable per cube variable (dims sample, level,
    lat, lon; units, standard_name), read lazily with `xarray.open_zarr`."""
    opened = xr.open_zarr(str(store.path), consolidated=False)
    cubes = opened["cubes"]
    if "variable" not in opened.coords:  # a store written before its coordinate arrays
        cubes = cubes.assign_coords(variable=[v.name for v in store.variables])
    ds = cubes.to_dataset("variable")
    for v in store.variables:
        ds[v.name].attrs = _var_attrs(v)
    keep = [c for c in ds.coords if c in ("level", "lat", "lon", "run")]
    ds = ds.drop_vars([c for c in ds.coords if c not in keep])
    ds.attrs = {"Conventions": "CF-1.8", "title": str(store.manifest.get("name", "")),
                "astrobio_store_digest": str(store.manifest.get("content_digest"))}
    return ds


def write_dataset(ds: xr.Dataset, out: str | Path) -> Path:
    """Write `ds` to `out` (.nc: NetCDF4; .zarr: zarr v3) atomically: built beside it, fsynced,
    then moved into place."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".nc", ".zarr"):
        raise ConfigError(f"--out must end in .nc (NetCDF) or .zarr, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(out)
    encoded = ds
    try:
        if suffix == ".nc":
            encoded.to_netcdf(tmp, format="NETCDF4", engine="netcdf4")
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, out)
            fsync_dir(out.parent)
        else:
            encoded.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False)
            fsync_tree(tmp)
            swap_into_place(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return out
