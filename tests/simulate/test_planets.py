"""astrobio.simulate.planets: planet specs derived from rows of the ingested catalogue table
(the real exoplanet.eu table shipped in spright), and the Earth reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from astrobio import simulate
from astrobio.errors import ConfigError, DataNotFoundError
from astrobio.ingest.catalogue import ingest_catalogue

MAIN_SPECS = json.loads((Path(__file__).parent / "data" / "main_specs.json").read_text())


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory, source_file) -> Path:
    """The exoplanet.eu table store, ingested from the real catalogue."""
    csv = source_file("spright", "data/exoplanet_eu.csv")
    return ingest_catalogue(csv, tmp_path_factory.mktemp("eu") / "catalogue_exoplanet_eu.zarr", schema="exoplanet.eu")


@pytest.fixture(scope="module")
def rows(table: Path) -> dict[str, dict]:
    names = [*simulate.CATALOGUE_SELECTION, *simulate.CATALOGUE_EXCLUDED]
    return simulate.load_catalogue_rows(names, table)


def test_trappist1e_transit_planet(rows: dict[str, dict]) -> None:
    row = rows["TRAPPIST-1 e"]
    spec = simulate.spec_from_catalogue_row(row)
    radius, mass = row["pl_rade"], row["pl_bmasse"]
    assert spec.radius_earth == pytest.approx(radius)
    assert spec.mass_earth == pytest.approx(mass)
    assert spec.gravity_ms2 == pytest.approx(9.80665 * mass / radius**2)
    lum = row["st_rad"] ** 2 * (row["st_teff"] / 5772.0) ** 4
    assert spec.instellation_earth == pytest.approx(lum / row["pl_orbsmax"] ** 2)
    # published value for TRAPPIST-1 e is ~0.66 S_earth
    assert 0.6 < spec.instellation_earth < 0.72
    assert spec.flux_wm2 == pytest.approx(spec.instellation_earth * 1367.0)
    assert spec.synchronous and spec.rotation_period_days == pytest.approx(row["pl_orbper"])
    assert spec.star_teff_k == 2560.0 and spec.source_row == "TRAPPIST-1 e"
    assert "exoplanet.eu" in spec.source and "spright" in spec.source


def test_proxima_b_has_minimum_mass_and_relation_radius(rows: dict[str, dict]) -> None:
    spec = simulate.spec_from_catalogue_row(rows["Proxima Centauri b"])
    mass = rows["Proxima Centauri b"]["pl_bmasse"]
    assert mass == pytest.approx(0.00337 * 317.828, rel=1e-5)  # 0.00337 M_J in the catalogue
    assert spec.mass_earth == pytest.approx(mass)
    assert "minimum mass" in spec.notes["mass"]
    assert spec.radius_earth == pytest.approx(1.03 * mass**0.29)
    assert "Otegi" in spec.notes["radius"]
    assert 0.6 < spec.instellation_earth < 0.7  # published ~0.65
    assert spec.synchronous and spec.rotation_period_days == pytest.approx(11.1881)


def test_kepler442b_mass_from_radius_and_not_locked(rows: dict[str, dict]) -> None:
    spec = simulate.spec_from_catalogue_row(rows["Kepler-442 b"])
    radius = rows["Kepler-442 b"]["pl_rade"]
    assert radius == pytest.approx(0.12 * 11.209, rel=1e-5)  # 0.12 R_J in the catalogue
    assert spec.radius_earth == pytest.approx(radius)
    mass = (radius / 1.03) ** (1 / 0.29)
    assert spec.mass_earth == pytest.approx(mass)
    assert spec.gravity_ms2 == pytest.approx(9.80665 * mass / radius**2)
    assert not spec.synchronous and spec.rotation_period_days == 1.0  # K dwarf, 112-day orbit


def test_excluded_rows_lack_fields(rows: dict[str, dict]) -> None:
    for name in simulate.CATALOGUE_EXCLUDED:
        with pytest.raises(ConfigError, match="lacks"):
            simulate.spec_from_catalogue_row(rows[name])


def test_default_specs_are_temperate_and_unique(table: Path) -> None:
    specs = simulate.default_planet_specs(table)
    assert specs[0].name == "Earth" and specs[0].solar_spectrum and not specs[0].aquaplanet
    assert len({s.slug for s in specs}) == len(specs)
    for s in specs:
        assert 0.2 < s.instellation_earth < 1.6, s.name
        assert 0.5 < s.radius_earth < 2.0, s.name
        assert all(math.isfinite(v) for v in (s.gravity_ms2, s.rotation_period_days))


def test_specs_match_the_csv_reader_they_replace(table: Path) -> None:
    """`MAIN_SPECS` were derived by the former CSV reader (Jupiter units converted with
    R_J = 11.209 R_E and M_J = 317.828 M_E); the table converts with the IAU 2015 nominal values
    (11.20898, 317.82838): catalogue radii and masses agree to 2e-6, a mass derived from a
    radius (M ~ R^3.45) and the gravity to 1e-5, and everything else exactly."""
    specs = simulate.default_planet_specs(table)
    assert [s.name for s in specs] == [m["name"] for m in MAIN_SPECS]
    for spec, main in zip(specs, MAIN_SPECS):
        new = spec.to_dict()
        for key, value in main.items():
            if key in ("notes", "source"):
                continue
            if isinstance(value, float):
                assert new[key] == pytest.approx(value, rel=1e-5), (spec.name, key)
            else:
                assert new[key] == value, (spec.name, key)
        # the same rules applied: only the wording of the catalogue values changed
        assert set(new["notes"]) == set(main["notes"]), spec.name
        assert ("minimum mass" in new["notes"].get("mass", "")) == ("minimum mass" in main["notes"].get("mass", ""))
        assert ("Otegi" in new["notes"].get("mass", "")) == ("Otegi" in main["notes"].get("mass", ""))


def test_unknown_planet_is_reported(table: Path) -> None:
    with pytest.raises(DataNotFoundError, match="Nowhere b"):
        simulate.load_catalogue_rows(["Nowhere b"], table)


def test_missing_table_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="astrobio datasets build default"):
        simulate.load_catalogue_rows(["TRAPPIST-1 e"], tmp_path / "absent.zarr")


def test_earth_reference_keeps_earth_defaults() -> None:
    earth = simulate.earth_reference_spec()
    assert earth.source == "reference" and earth.instellation_earth == 1.0 and earth.po2_bar == 0.21
    warm = simulate.earth_reference_spec(1.1)
    assert warm.name == "Earth S1.1" and warm.instellation_earth == 1.1 and "variation" in warm.notes
    assert np.isclose(warm.flux_wm2, 1.1 * 1367.0)
