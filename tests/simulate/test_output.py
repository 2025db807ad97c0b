"""astrobio.simulate.output: reading ExoPlaSim's netCDF layout (through the one NetCDF reader),
the global mean, and a run's result on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astrobio import simulate
from astrobio.errors import DataNotFoundError, IntegrityError


NLEV, NLAT, NLON = 10, 4, 8
SIGMA = np.array([0.0383, 0.1191, 0.2108, 0.3168, 0.4368, 0.5668, 0.6994, 0.8233, 0.9241, 0.9833])
UNITS = {"ta": "K", "ua": "m s-1", "va": "m s-1", "hus": "1", "wap": "Pa s-1", "ts": "K", "ps": "hPa"}


def write_exoplasim_like(path: Path, *, nan: bool = False, drop: str | None = None) -> dict[str, np.ndarray]:
    """A small file with ExoPlaSim's (pyburn grid-mode) netCDF layout: dims time/lev/lat/lon,
    ``lev`` = sigma at layer midpoints, fields [time, lev, lat, lon] float32."""
    netCDF4 = pytest.importorskip("netCDF4")
    rng = np.random.default_rng(0)
    values: dict[str, np.ndarray] = {}
    with netCDF4.Dataset(path, "w") as ds:
        for d, n in (("time", 12), ("lev", NLEV), ("lat", NLAT), ("lon", NLON)):
            ds.createDimension(d, n)
        lat = ds.createVariable("lat", "f4", ("lat",)); lat.units = "deg"
        lat[:] = [60.0, 20.0, -20.0, -60.0]
        lon = ds.createVariable("lon", "f4", ("lon",)); lon.units = "deg"
        lon[:] = np.arange(NLON) * 360.0 / NLON
        lev = ds.createVariable("lev", "f4", ("lev",)); lev.units = "nondimensional"
        lev[:] = SIGMA
        t = ds.createVariable("time", "f4", ("time",)); t.units = "timesteps"
        t[:] = np.arange(12) * 20.0 + 9.0
        for i, v in enumerate(simulate.VARIABLES):
            if v == drop:
                continue
            a = (rng.standard_normal((12, NLEV, NLAT, NLON)) + 10 * i).astype(np.float32)
            if nan and v == "hus":
                a[3, 2, 1, 0] = np.nan
            var = ds.createVariable(v, "f4", ("time", "lev", "lat", "lon")); var.units = UNITS[v]
            var[:] = a
            values[v] = a
        for v in simulate.SURFACE_VARIABLES:
            a = (280.0 + rng.standard_normal((12, NLAT, NLON))).astype(np.float32)
            var = ds.createVariable(v, "f4", ("time", "lat", "lon")); var.units = UNITS[v]
            var[:] = a
            values[v] = a
    return values


def test_read_exoplasim_output_stacks_variables(tmp_path: Path) -> None:
    path = tmp_path / "MOST.00000.nc"
    values = write_exoplasim_like(path)
    data, surface, coords, units = simulate.read_exoplasim_output(path)
    assert data.shape == (12, 5, NLEV, NLAT, NLON) and data.dtype == np.float32
    for i, v in enumerate(simulate.VARIABLES):
        np.testing.assert_array_equal(data[:, i], values[v])
        assert units[v] == UNITS[v]
    np.testing.assert_array_equal(surface["ts"], values["ts"])
    np.testing.assert_allclose(coords["level"], SIGMA.astype(np.float32))
    np.testing.assert_array_equal(coords["month"], np.arange(1, 13))
    assert coords["lat"][0] == 60.0 and coords["lon"].shape == (NLON,)


def test_read_exoplasim_output_refuses_bad_files(tmp_path: Path) -> None:
    write_exoplasim_like(tmp_path / "nan.nc", nan=True)
    with pytest.raises(IntegrityError, match="NaN"):
        simulate.read_exoplasim_output(tmp_path / "nan.nc")
    write_exoplasim_like(tmp_path / "nowap.nc", drop="wap")
    with pytest.raises(IntegrityError, match="wap"):
        simulate.read_exoplasim_output(tmp_path / "nowap.nc")
    with pytest.raises(DataNotFoundError):
        simulate.read_exoplasim_output(tmp_path / "absent.nc")


def test_global_mean_uses_gaussian_weights() -> None:
    lat = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(32)[0]))[::-1]  # north to south
    const = np.full((3, 32, 64), 250.0)
    np.testing.assert_allclose(simulate.global_mean(const, lat), 250.0)
    # mean of sin^2(lat) over the sphere is 1/3; Gaussian quadrature integrates it exactly
    field = np.broadcast_to(np.sin(np.deg2rad(lat))[:, None] ** 2, (32, 64))
    assert simulate.global_mean(field, lat) == pytest.approx(1.0 / 3.0, rel=1e-10)


def test_save_and_load_result_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "MOST.00000.nc"
    write_exoplasim_like(path)
    data, surface, coords, units = simulate.read_exoplasim_output(path)
    result = simulate.SimulationResult(data=data, surface=surface, coords=coords, units=units,
                                       provenance={"model": "ExoPlaSim", "spin_up": True,
                                                   "drift": np.float64(0.5)})
    simulate.save_result(result, tmp_path / "out")
    back = simulate.load_result(tmp_path / "out")
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_array_equal(back.surface["ps"], surface["ps"])
    np.testing.assert_array_equal(back.coords["level"], coords["level"])
    assert back.provenance == {"model": "ExoPlaSim", "spin_up": True, "drift": 0.5}
    assert back.units["wap"] == "Pa s-1"
    with pytest.raises(DataNotFoundError):
        simulate.load_result(tmp_path / "nothing")
