"""astrobio.simulate.exoplasim without running the GCM: configure arguments and the
missing-dependency path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from astrobio import simulate
from astrobio.errors import ConfigError, DependencyError


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




def test_run_planet_names_a_missing_restart_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="restart file .*MOST_REST.00001 does not exist"):
        simulate.run_planet(simulate.earth_reference_spec(), tmp_path, years=1,
                            restart_file=tmp_path / "MOST_REST.00001")
    assert not (tmp_path / "model").exists()
