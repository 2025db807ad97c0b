"""CF coordinate arrays of a cube store, so that `xarray.open_zarr(store, consolidated=False)`
shows the cube with named variables, lat / lon / level coordinates and units.

Written beside `cubes` and `params` when a store is committed (`StoreWriter.commit`), from the
manifest's `coords`, `variables`, `params` and `runs`; nothing of the cubes is rewritten. They
are derived data, like the manifest's `coords`: not in `digests`, so a store's content digest is
the same with or without them and stores written before them still open and verify.

    variable (variable)          the variable names        (a dimension coordinate)
    variable_units, variable_long_name, variable_standard_name (variable)
    level, lat, lon              the grid, with CF attributes (level: sigma when the store says so)
    param, param_units (param)   the parameter names and units
    run (sample)                 the run (planet) of each sample

`xr.open_zarr(path, consolidated=False).cubes.to_dataset("variable")` gives one data variable per
name; `astrobio.emulator.fields.store_dataset` does the same with each variable's units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .cube import Variable

__all__ = ["CF_STANDARD_NAMES", "COORDINATE_ARRAYS", "coordinate_attrs", "write_coordinates", "standard_name"]

#: CF standard names of the variable names astrobio's stores use (GCM short names, CMIP style).
CF_STANDARD_NAMES = {
    "ta": "air_temperature", "ua": "eastward_wind", "va": "northward_wind", "hus": "specific_humidity",
    "wap": "lagrangian_tendency_of_air_pressure", "wa": "upward_air_velocity", "zg": "geopotential_height",
    "hur": "relative_humidity", "ts": "surface_temperature", "tas": "air_temperature", "ps": "surface_air_pressure",
    "psl": "air_pressure_at_mean_sea_level", "clt": "cloud_area_fraction",
}
#: The arrays `write_coordinates` may add (none of them digested).
COORDINATE_ARRAYS = ("variable", "variable_units", "variable_long_name", "variable_standard_name", "level", "lat",
                     "lon", "param", "param_units", "run")
_NON_DIM = ("variable_units", "variable_long_name", "variable_standard_name", "param_units", "run")


def standard_name(name: str) -> str | None:
    """The CF standard name of a store variable's short name (None when not known)."""
    return CF_STANDARD_NAMES.get(name)


def coordinate_attrs(name: str, coord: Mapping[str, Any]) -> dict[str, Any]:
    """CF attributes of the manifest coordinate `name` ("lat", "lon", "level")."""
    units = str(coord.get("units", ""))
    if name == "lat":
        return {"standard_name": "latitude", "long_name": "latitude", "units": units or "degrees_north", "axis": "Y"}
    if name == "lon":
        return {"standard_name": "longitude", "long_name": "longitude", "units": units or "degrees_east", "axis": "X"}
    if coord.get("name") == "sigma":  # p / p_surface: dimensionless, 1 at the surface
        return {"standard_name": "atmosphere_sigma_coordinate", "long_name": "sigma (p / p_surface)", "units": "1",
                "positive": "down", "axis": "Z"}
    return {"long_name": str(coord.get("name") or "level"), "units": units, "axis": "Z"}


def write_coordinates(group: Any, coords: Mapping[str, Any], sample_shape: Sequence[int], variables: Sequence[Variable],
                      params: Sequence[Variable], runs: Sequence[Mapping[str, Any]]) -> None:
    """Add the coordinate arrays to the zarr group `group` (a store being built). A manifest
    coordinate whose length does not match its axis is left out (it is free-form)."""
    _, n_level, n_lat, n_lon = (int(s) for s in sample_shape)

    def strings(name: str, values: Sequence[str], dim: str, attrs: Mapping[str, Any]) -> None:
        arr = group.create_array(name, shape=(len(values),), chunks=(max(1, len(values)),), dtype=str, dimension_names=(dim,))
        if values:
            arr[...] = np.asarray(list(values), dtype=object)
        arr.attrs.update(dict(attrs))

    strings("variable", [v.name for v in variables], "variable", {"long_name": "variable name"})
    strings("variable_units", [v.units for v in variables], "variable", {"long_name": "units of each variable"})
    strings("variable_long_name", [v.long_name for v in variables], "variable", {"long_name": "long name of each variable"})
    strings("variable_standard_name", [standard_name(v.name) or "" for v in variables], "variable",
            {"long_name": "CF standard name of each variable"})
    for name, size in (("level", n_level), ("lat", n_lat), ("lon", n_lon)):
        coord = coords.get(name)
        values = coord.get("values") if isinstance(coord, Mapping) else None
        if not isinstance(coord, Mapping) or values is None or len(values) != size:
            continue
        arr = group.create_array(name, shape=(size,), chunks=(size,), dtype="float64", dimension_names=(name,))
        arr[...] = np.asarray(values, np.float64)
        arr.attrs.update(coordinate_attrs(name, coord))
    present = list(_NON_DIM)
    if params:
        strings("param", [p.name for p in params], "param", {"long_name": "planet parameter name"})
        strings("param_units", [p.units for p in params], "param", {"long_name": "units of each parameter"})
    else:
        present.remove("param_units")
    run_of_sample = [str(r["id"]) for r in runs for _ in range(int(r["count"]))]
    strings("run", run_of_sample, "sample", {"long_name": "run (planet) of each sample"})
    # xarray reads a global "coordinates" attribute as the non-dimension coordinates (CF 1.8).
    group.attrs.update({"Conventions": "CF-1.8", "coordinates": " ".join(present)})
