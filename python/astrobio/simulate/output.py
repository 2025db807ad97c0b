"""ExoPlaSim's output: its NetCDF year files (read through the one NetCDF reader,
`astrobio.ingest.netcdf`), the area-weighted global mean, and a run's result on disk
(``result.npz`` + ``result.json``, each written atomically and durably)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._fsutil import atomic_write
from ..errors import DataNotFoundError, IntegrityError
from ..ingest.netcdf import open_netcdf

__all__ = ["VARIABLES", "SURFACE_VARIABLES", "INSTALL_HINT", "SimulationResult", "read_exoplasim_output", "global_mean",
           "save_result", "load_result"]

#: The five 3-D fields collected, in the order of axis 1 of the result array.
VARIABLES: tuple[str, ...] = ("ta", "ua", "va", "hus", "wap")
#: Surface fields also postprocessed: ``ts`` (needed by ExoPlaSim's own integrity check and the
#: drift diagnostic) and ``ps`` (to convert sigma levels to pressure).
SURFACE_VARIABLES: tuple[str, ...] = ("ts", "ps")

INSTALL_HINT = (
    "apt-get install gfortran && pip install exoplasim meson ninja netCDF4"
)


@dataclass
class SimulationResult:
    """The final model year of one run.

    Attributes:
        data: float32 ``[12, 5, levels, lat, lon]``; axis 1 follows `VARIABLES`.
        surface: float32 arrays ``[12, lat, lon]`` for ``ts`` (K) and ``ps`` (hPa).
        coords: ``level`` (sigma, 1 = surface), ``lat`` (degrees north, as written by the model,
            north to south), ``lon`` (degrees east), ``month`` (1..12).
        units: Units per variable and coordinate, as written by ExoPlaSim.
        provenance: Model, version, resolution, every configure parameter, years, spin-up state.
    """

    data: np.ndarray
    surface: dict[str, np.ndarray]
    coords: dict[str, np.ndarray]
    units: dict[str, str]
    provenance: dict[str, Any]


def read_exoplasim_output(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """Read one ExoPlaSim netCDF year file (pyburn, grid mode, 12 time means).

    Values are read as stored (no fill-value masking or unpacking), so a NaN in a field is seen.

    Returns:
        ``(data, surface, coords, units)``: data float32 ``[time, 5, lev, lat, lon]`` in the
        order of `VARIABLES`; surface ``{"ts", "ps"}`` arrays ``[time, lat, lon]`` where present;
        coords ``level`` (sigma), ``lat``, ``lon``; units per name.

    Raises:
        DataNotFoundError: the file is missing.
        IntegrityError: a variable is missing, has an unexpected shape, or holds NaN/Inf.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError("ExoPlaSim output file is missing", path=str(path),
                                hint="Run the model first with astrobio.simulate.run_planet(...)")
    ds, _ = open_netcdf(path, decode=False)
    with ds:
        missing = [v for v in (*VARIABLES, "lev", "lat", "lon") if v not in ds.variables]
        if missing:
            raise IntegrityError(f"ExoPlaSim output {path} lacks {missing}", path=str(path))
        arrays = [np.asarray(ds[v].values, dtype=np.float32) for v in VARIABLES]
        shape = arrays[0].shape
        if len(shape) != 4 or any(a.shape != shape for a in arrays):
            raise IntegrityError(f"ExoPlaSim output {path}: expected equal [time, lev, lat, lon] "
                                 f"fields, got {[a.shape for a in arrays]}", path=str(path))
        data = np.stack(arrays, axis=1)
        units = {v: str(ds[v].attrs.get("units", "")) for v in (*VARIABLES, *SURFACE_VARIABLES, "lev", "lat", "lon")
                 if v in ds.variables}
        surface = {v: np.asarray(ds[v].values, dtype=np.float32) for v in SURFACE_VARIABLES if v in ds.variables}
        coords = {"level": np.asarray(ds["lev"].values, dtype=np.float64),
                  "lat": np.asarray(ds["lat"].values, dtype=np.float64),
                  "lon": np.asarray(ds["lon"].values, dtype=np.float64)}
    if (coords["level"].shape[0], coords["lat"].shape[0], coords["lon"].shape[0]) != shape[1:]:
        raise IntegrityError(f"ExoPlaSim output {path}: coordinates do not match field shape {shape}",
                             path=str(path))
    if not np.isfinite(data).all() or not all(np.isfinite(s).all() for s in surface.values()):
        raise IntegrityError(f"ExoPlaSim output {path} holds NaN or Inf", path=str(path))
    coords["month"] = np.arange(1, shape[0] + 1, dtype=np.int64)
    return data, surface, coords, units


def global_mean(field2d: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Area-weighted (Gaussian-quadrature) global mean over the last two axes ``[..., lat, lon]``.

    ExoPlaSim's grid is Gaussian; the weight of each latitude is its Gauss-Legendre weight.
    """
    nlat = lat_deg.shape[0]
    nodes, weights = np.polynomial.legendre.leggauss(nlat)
    # nodes are sin(lat) ascending; map each model latitude to its node's weight
    order = np.argsort(np.sin(np.deg2rad(lat_deg)))
    w = np.empty(nlat)
    w[order] = weights
    zonal = np.asarray(field2d, dtype=np.float64).mean(axis=-1)
    return (zonal * w).sum(axis=-1) / w.sum()


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_result(result: SimulationResult, outdir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``result.npz`` (data, ts, ps, level, lat, lon, month) and ``result.json``
    (provenance, units) into `outdir`, each atomically and durably (`astrobio._fsutil.atomic_write`)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    npz = outdir / "result.npz"
    meta = outdir / "result.json"
    arrays: dict[str, Any] = {"data": result.data, **result.surface, **result.coords}
    with atomic_write(npz) as f:
        np.savez_compressed(f, **arrays)
    doc = {"provenance": result.provenance, "units": result.units,
           "variables": list(VARIABLES), "shape": list(result.data.shape)}
    with atomic_write(meta, "w") as g:
        json.dump(doc, g, indent=1, default=_json_default)
    return npz, meta


def load_result(outdir: str | os.PathLike[str]) -> SimulationResult:
    """Read a result written by `save_result`."""
    outdir = Path(outdir)
    npz, meta = outdir / "result.npz", outdir / "result.json"
    for p in (npz, meta):
        if not p.is_file():
            raise DataNotFoundError("simulation result is missing", path=str(p),
                                    hint="Run astrobio.simulate.run_planet(...) and save_result(...)")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    doc = json.loads(meta.read_text())
    return SimulationResult(
        data=arrays.pop("data"),
        surface={k: arrays.pop(k) for k in SURFACE_VARIABLES if k in arrays},
        coords=arrays, units=doc["units"], provenance=doc["provenance"],
    )
