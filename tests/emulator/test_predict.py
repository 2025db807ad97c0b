"""Loading a trained emulator and predicting planets: the same predictions as training's
evaluation, CF datasets that xarray and cf-xarray read as is, planets by name, parameters or
catalogue rows, range warnings, and one-line refusals."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astrobio
from astrobio.cli import main
from astrobio.emulator import ExtrapolationWarning, load_emulator
from astrobio.emulator.predict import planet_spec, spec_row
from astrobio.errors import ConfigError, DataNotFoundError
from astrobio.reader import CubeReader


@pytest.fixture(scope="module")
def emulator(tiny_run: Path):
    return load_emulator(tiny_run)


def test_loaded_emulator_reproduces_the_runs_held_out_rmse(emulator, tiny_run: Path, climate: Path) -> None:
    summary = json.loads((tiny_run / "summary.json").read_text())
    store = astrobio.open_store(climate)
    idx = store.samples("test")
    batch = CubeReader(climate).read(idx)
    pred = emulator.predict_normalized(batch.params)[0].numpy()
    rmse = float(np.sqrt(((pred - batch.cubes) ** 2).mean(axis=(0, 2, 3, 4)).mean()))
    assert rmse == pytest.approx(summary["evaluation"]["test"]["model"]["rmse"], rel=1e-5)
    assert emulator.param_names == [p.name for p in store.params] and not emulator.ensemble
    lo, hi = emulator.training_range["instellation"]
    assert 0.2 < lo < hi < 1.6  # the campaign's training planets (docs/climate-campaign.md)


def test_astrobio_exports_load_emulator(tiny_run: Path) -> None:
    assert astrobio.load_emulator is load_emulator


def test_cli_predicts_earth_into_a_cf_netcdf(tiny_run: Path, climate: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "earth.nc"
    assert main(["predict", str(tiny_run), "--planet", "earth", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    ds = xr.open_dataset(out)
    assert {"lat", "lon", "level"} <= set(ds.coords)
    assert ds["ta"].attrs["units"] == "K" and ds["ta"].attrs["standard_name"] == "air_temperature"
    assert ds["ta"].dims == ("planet", "level", "lat", "lon") and ds.sizes["lat"] == 32 and ds.sizes["lon"] == 64
    assert ds["level"].attrs["standard_name"] == "atmosphere_sigma_coordinate"
    assert 150 < float(ds["ta"].mean()) < 350
    assert ds.attrs["planet_name"] == "Earth" and ds.attrs["planet_instellation"] == 1.0
    assert ds.attrs["astrobio_training_store_digest"] == astrobio.open_store(climate).manifest["content_digest"]
    assert ds.attrs["Conventions"] == "CF-1.8" and str(tiny_run) in ds.attrs["astrobio_run"]
    cf_xarray = pytest.importorskip("cf_xarray", reason="the dev extra's cf-xarray")
    assert cf_xarray and ds.cf["latitude"].name == "lat" and ds.cf["air_temperature"].name == "ta"
    assert ds.cf.axes["Z"] == ["level"]


def test_zarr_output_matches_the_python_api(emulator, tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "earth.zarr"
    assert main(["predict", str(tiny_run), "--planet", "earth", "--out", str(out)]) == 0
    disk = xr.open_zarr(out, consolidated=False)
    mem = emulator.predict("earth")
    np.testing.assert_array_equal(disk["hus"].values, mem["hus"].values)


def test_catalogue_planet_is_described_as_the_training_run_was(emulator, climate: Path, source_file, tmp_path: Path) -> None:
    from astrobio.ingest.catalogue import ingest_catalogue

    table = ingest_catalogue(source_file("spright", "data/exoplanet_eu.csv"), tmp_path / "eu.zarr", schema="exoplanet.eu")
    store = astrobio.open_store(climate)
    run = store.run("trappist-1_e")
    stored = CubeReader(climate, normalize="none").read([run.start]).params[0]
    np.testing.assert_allclose(spec_row(emulator, planet_spec("TRAPPIST-1 e", table)), stored, rtol=1e-5)
    # many planets at once: every row the query keeps, with its parameters as coordinates
    out = tmp_path / "m_dwarfs.nc"
    assert main(["predict", str(Path(emulator.run_dir)), "--catalogue", str(table), "--where", "st_teff < 2700 and pl_rade < 1.2",
                 "--out", str(out)]) == 0
    ds = xr.open_dataset(out)
    assert ds.sizes["planet"] >= 3 and "TRAPPIST-1 e" in list(ds["planet"].values)
    assert float(ds["star_teff"].max()) < 2700 and ds["instellation"].attrs["units"] == "S_earth"


def test_parameters_outside_the_training_range_warn_naming_them(emulator, tiny_run: Path, tmp_path: Path, capsys) -> None:
    with pytest.warns(ExtrapolationWarning, match=r"instellation=3 .*trained on"):
        emulator.predict(params={"instellation": 3, "star_teff": 3300, "rotation_period": "synchronous", "orbital_period": 8})
    assert main(["predict", str(tiny_run), "--params", "instellation=0.9,star_teff=9000,rotation_period=1",
                 "--out", str(tmp_path / "p.nc")]) == 0
    err = capsys.readouterr().err
    assert "star_teff=9000" in err and "instellation" not in err


@pytest.mark.parametrize("argv, fragment", [
    (["--planet", "no such planet"], "DataNotFoundError"),
    (["--params", "instellation=0.9,colour=blue"], "unknown parameter(s) colour"),
    (["--params", "instellation=0.9,star_teff=3000"], "needs rotation_period"),
    (["--params", "instellation=x,star_teff=3000,rotation_period=2"], "is not a number"),
    (["--planet", "earth", "--params", "instellation=1"], "one way"),
])
def test_bad_planets_are_one_line_errors(tiny_run: Path, tmp_path: Path, capsys, argv, fragment) -> None:
    assert main(["predict", str(tiny_run), *argv, "--out", str(tmp_path / "x.nc")]) == 2
    # one error line (a fresh data home may first print the progress of building the catalogues)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("astrobio:")]
    assert len(err) == 1 and fragment in err[0]


def test_bad_output_suffix_and_missing_run_are_refused(tiny_run: Path, tmp_path: Path) -> None:
    from astrobio.emulator.fields import write_dataset

    with pytest.raises(ConfigError, match=r"\.nc .* or \.zarr"):
        write_dataset(xr.Dataset(), tmp_path / "x.csv")
    with pytest.raises(DataNotFoundError):
        load_emulator(tmp_path / "nothing")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=st.floats(0.3, 1.45), teff=st.floats(2600, 5800), period=st.floats(0.5, 40), radius=st.floats(0.75, 1.6),
       ps=st.floats(0.55, 1.8))
def test_predictions_in_range_are_finite_physical_and_batch_independent(emulator, s, teff, period, radius, ps) -> None:
    params = {"instellation": s, "star_teff": teff, "rotation_period": period, "radius": radius, "surface_pressure": ps}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)  # gravity/T_eq derived inside the range here
        try:
            ds = emulator.predict(params=params)
        except ExtrapolationWarning:
            ds = emulator.predict(params=params, warn=False)
    ta = ds["ta"].values
    assert np.isfinite(ta).all() and 50 < ta.mean() < 500
    row = np.array([[float(ds[p].values[0]) for p in emulator.param_names]])
    alone, _ = emulator.predict_physical(row)
    together, _ = emulator.predict_physical(np.concatenate([row, row * 0 + emulator.param_norm.mean]))
    # float32 convolutions may round differently in a batch of two: compare in normalized units
    assert (np.abs(together[0] - alone[0]) / emulator.norm.scale[:, :, None, None]).max() < 1e-4
