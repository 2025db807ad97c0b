"""astrobio.simulate without running the GCM: planet specs derived from real catalogue rows,
the missing-dependency path, configure arguments, and reading ExoPlaSim's netCDF layout."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from astrobio import simulate
from astrobio.errors import ConfigError, DataNotFoundError, DependencyError, IntegrityError

needs_spright = pytest.mark.skipif(importlib.util.find_spec("spright") is None,
                                   reason="spright (the catalogue package) is not installed")


# ----------------------------------------------------------------- catalogue-derived specs


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    if importlib.util.find_spec("spright") is None:
        pytest.skip("spright (the catalogue package) is not installed")
    names = [*simulate.CATALOGUE_SELECTION, *simulate.CATALOGUE_EXCLUDED]
    return simulate.load_catalogue_rows(names)


def test_trappist1e_transit_planet(rows: dict[str, dict[str, str]]) -> None:
    row = rows["TRAPPIST-1 e"]
    spec = simulate.spec_from_catalogue_row(row)
    radius = float(row["radius"]) * simulate.JUPITER_RADIUS_IN_EARTH
    mass = float(row["mass"]) * simulate.JUPITER_MASS_IN_EARTH
    assert spec.radius_earth == pytest.approx(radius)
    assert spec.mass_earth == pytest.approx(mass)
    assert spec.gravity_ms2 == pytest.approx(9.80665 * mass / radius**2)
    lum = float(row["star_radius"]) ** 2 * (float(row["star_teff"]) / 5772.0) ** 4
    assert spec.instellation_earth == pytest.approx(lum / float(row["semi_major_axis"]) ** 2)
    # published value for TRAPPIST-1 e is ~0.66 S_earth
    assert 0.6 < spec.instellation_earth < 0.72
    assert spec.flux_wm2 == pytest.approx(spec.instellation_earth * 1367.0)
    assert spec.synchronous and spec.rotation_period_days == pytest.approx(float(row["orbital_period"]))
    assert spec.star_teff_k == 2560.0 and spec.source_row == "TRAPPIST-1 e"
    assert "spright" in spec.source


def test_proxima_b_has_minimum_mass_and_relation_radius(rows: dict[str, dict[str, str]]) -> None:
    spec = simulate.spec_from_catalogue_row(rows["Proxima Centauri b"])
    mass = 0.00337 * simulate.JUPITER_MASS_IN_EARTH
    assert spec.mass_earth == pytest.approx(mass)
    assert "minimum mass" in spec.notes["mass"]
    assert spec.radius_earth == pytest.approx(1.03 * mass**0.29)
    assert "Otegi" in spec.notes["radius"]
    assert 0.6 < spec.instellation_earth < 0.7  # published ~0.65
    assert spec.synchronous and spec.rotation_period_days == pytest.approx(11.1881)


def test_kepler442b_mass_from_radius_and_not_locked(rows: dict[str, dict[str, str]]) -> None:
    spec = simulate.spec_from_catalogue_row(rows["Kepler-442 b"])
    radius = 0.12 * simulate.JUPITER_RADIUS_IN_EARTH
    assert spec.radius_earth == pytest.approx(radius)
    mass = (radius / 1.03) ** (1 / 0.29)
    assert spec.mass_earth == pytest.approx(mass)
    assert spec.gravity_ms2 == pytest.approx(9.80665 * mass / radius**2)
    assert not spec.synchronous and spec.rotation_period_days == 1.0  # K dwarf, 112-day orbit


def test_excluded_rows_lack_fields(rows: dict[str, dict[str, str]]) -> None:
    for name in simulate.CATALOGUE_EXCLUDED:
        with pytest.raises(ConfigError, match="lacks"):
            simulate.spec_from_catalogue_row(rows[name])


@needs_spright
def test_default_specs_are_temperate_and_unique() -> None:
    specs = simulate.default_planet_specs()
    assert specs[0].name == "Earth" and specs[0].solar_spectrum and not specs[0].aquaplanet
    assert len({s.slug for s in specs}) == len(specs)
    for s in specs:
        assert 0.2 < s.instellation_earth < 1.6, s.name
        assert 0.5 < s.radius_earth < 2.0, s.name
        assert all(math.isfinite(v) for v in (s.gravity_ms2, s.rotation_period_days))


@needs_spright
def test_unknown_planet_is_reported() -> None:
    with pytest.raises(DataNotFoundError, match="Nowhere b"):
        simulate.load_catalogue_rows(["Nowhere b"])


def test_missing_spright_is_a_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "spright" else real(name, *a))
    with pytest.raises(DependencyError, match="pip install spright"):
        simulate.catalogue_path()


# ----------------------------------------------------------------- model arguments


def test_configure_kwargs_locked_and_earth() -> None:
    spec = simulate.PlanetSpec(name="X b", source="test", source_row=None, star_teff_k=3000.0,
                               instellation_earth=0.8, radius_earth=1.1, gravity_ms2=10.0,
                               rotation_period_days=9.0, synchronous=True)
    kw = simulate.exoplasim_configure_kwargs(spec)
    assert kw["flux"] == pytest.approx(0.8 * 1367.0)
    assert kw["startemp"] == 3000.0 and kw["synchronous"] and kw["rotationperiod"] == 9.0
    assert kw["pN2"] + kw["pCO2"] == pytest.approx(1.0)
    assert kw["physicsfilter"] == "gp|exp|sp" and kw["fixedorbit"] and kw["timestep"] == 45.0
    earth = simulate.exoplasim_configure_kwargs(simulate.earth_reference_spec(1.1))
    assert earth["startemp"] is None and earth["flux"] == pytest.approx(1.1 * 1367.0)
    assert earth["pN2"] + earth["pCO2"] + earth["pO2"] == pytest.approx(1.0)
    assert not earth["synchronous"] and "physicsfilter" not in earth
    with pytest.raises(ConfigError):
        simulate.exoplasim_configure_kwargs(
            simulate.PlanetSpec(name="Y", source="test", source_row=None, star_teff_k=3000.0,
                                instellation_earth=1.0, radius_earth=1.0, gravity_ms2=9.8,
                                rotation_period_days=1.0, synchronous=False,
                                surface_pressure_bar=0.1, pco2_bar=0.2))


def test_missing_exoplasim_is_a_dependency_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "exoplasim", None)  # makes `import exoplasim` fail
    spec = simulate.earth_reference_spec()
    with pytest.raises(DependencyError, match="gfortran") as info:
        simulate.run_planet(spec, tmp_path, years=1)
    assert isinstance(info.value, ImportError)
    assert "pip install exoplasim" in str(info.value)
    assert not (tmp_path / "model").exists()


def test_run_planet_rejects_zero_years(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        simulate.run_planet(simulate.earth_reference_spec(), tmp_path, years=0)


# ----------------------------------------------------------------- output reading


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
