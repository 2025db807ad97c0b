"""Climate ingest from the command line: valid ranges (--range, CF defaults, recorded with their
origin), units hints in the caller's syntax, rotated-pole and curvilinear grids refused naming
the coordinate, zarr input. Inputs are small real-shaped NetCDF / zarr files built here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import astrobio
from astrobio.cli import main
from astrobio.ingest.climate_format import _ranges
from astrobio.errors import ConfigError
from astrobio.ingest.cf import CF_RANGES, cf_default
from astrobio.ingest.climate import ingest_climate

LAT = np.linspace(-87.5, 87.5, 8)
LON = np.arange(0.0, 360.0, 30.0)
PLEV = np.array([1000.0, 850.0, 500.0])


def gcm_dataset(t_offset: float = 0.0, **extra_attrs: dict) -> xr.Dataset:
    """A GCM-shaped run: air temperature and winds on 3 pressure levels, 4 time steps, smooth
    in latitude (a warm equator), CF attributes as models write them."""
    coslat = np.cos(np.deg2rad(LAT))[None, None, :, None]
    lev = (PLEV / 1000.0)[None, :, None, None]
    ta = 200.0 + 90.0 * coslat * lev + np.arange(4)[:, None, None, None] + 0.1 * np.sin(np.deg2rad(LON)) + t_offset
    ua = 25.0 * coslat * (1.5 - lev) * np.ones((4, 3, 8, 12))
    ds = xr.Dataset(
        {
            "t": (("time", "plev", "lat", "lon"), ta, {"standard_name": "air_temperature", "units": "K", "long_name": "temperature"}),
            "u": (("time", "plev", "lat", "lon"), ua, {"standard_name": "eastward_wind", "units": "m s**-1"}),
            "rhumidity": (("time", "plev", "lat", "lon"), np.full((4, 3, 8, 12), 55.0),
                          {"standard_name": "relative_humidity", **extra_attrs.get("rh", {})}),
        },
        coords={"time": np.arange(4.0), "plev": ("plev", PLEV, {"units": "hPa"}),
                "lat": ("lat", LAT, {"units": "degrees_north"}), "lon": ("lon", LON, {"units": "degrees_east"})},
    )
    return ds


@pytest.fixture
def run_nc(tmp_path: Path) -> Path:
    path = tmp_path / "run.nc"
    gcm_dataset().to_netcdf(path)
    return path


def cli_error(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


def test_cf_defaults_are_recorded_and_the_core_checks_them(tmp_path, run_nc, capsys):
    out = tmp_path / "s.zarr"
    assert main(["ingest", "climate", "--out", str(out), "--var", "t", "--var", "u", f"r1={run_nc}"]) == 0
    store = astrobio.open_store(out)
    got = {v["name"]: (v["valid_range"], v["range_source"]) for v in store.manifest["variables"]}
    assert got == {"t": ([10.0, 1500.0], "cf-default:air_temperature"), "u": ([-500.0, 500.0], "cf-default:eastward_wind")}
    assert store.verify()["ok"]
    # the core's range check now fires for this store: a value written past the range is refused on read
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["astrobio"]["variables"][0]["valid_range"] = [10.0, 250.0]
    (out / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(astrobio.IntegrityError, match=r"variable \"t\" level \d has a value 2\d\d\.\d+ outside the valid range \[10, 250\]"):
        astrobio.CubeReader(out, normalize="none").read([0])


def test_range_from_the_command_line_wins_and_may_be_open_ended(tmp_path, run_nc):
    out = tmp_path / "s.zarr"
    assert main(["ingest", "climate", "--out", str(out), "--var", "t", "--var", "u", "--range", "t=150:", "--range", "u=-80:80",
                 f"r1={run_nc}"]) == 0
    got = {v["name"]: (v["valid_range"], v["range_source"]) for v in astrobio.open_store(out).manifest["variables"]}
    assert got == {"t": ([150.0, None], "cli"), "u": ([-80.0, 80.0], "cli")}


def test_a_value_outside_the_default_says_where_the_range_came_from_and_how_to_change_it(tmp_path, capsys):
    src = tmp_path / "hot.nc"
    gcm_dataset(t_offset=1500.0).to_netcdf(src)  # a hot-Jupiter-like run: past the default's 1500 K
    out = tmp_path / "s.zarr"
    assert main(["ingest", "climate", "--out", str(out), "--var", "t", f"hot={src}"]) == 2
    line = cli_error(capsys)
    assert "outside the valid range [10.0, 1500.0] (range from cf-default:air_temperature; to change it: --range t=LO:HI)" in line
    assert not out.exists()
    with pytest.raises(astrobio.IntegrityError, match=r"to change it: valid_ranges=\{'t': \(lo, hi\)\}"):
        ingest_climate({"hot": src}, out, variables=["t"])
    assert main(["ingest", "climate", "--out", str(out), "--var", "t", "--range", "t=10:4000", f"hot={src}"]) == 0


def test_units_hint_in_the_callers_syntax(tmp_path, run_nc, capsys):
    out = tmp_path / "s.zarr"
    assert main(["ingest", "climate", "--out", str(out), "--var", "rhumidity", f"r1={run_nc}"]) == 2
    line = cli_error(capsys)
    assert "variable 'rhumidity' has no units attribute; pass them with --units rhumidity=%" in line and "units={" not in line
    with pytest.raises(astrobio.IntegrityError, match=r"pass units=\{'rhumidity': '%'\}"):
        ingest_climate({"r1": run_nc}, out, variables=["rhumidity"])
    assert main(["ingest", "climate", "--out", str(out), "--var", "rhumidity", "--units", "rhumidity=%", f"r1={run_nc}"]) == 0
    (v,) = astrobio.open_store(out).manifest["variables"]
    assert (v["units"], v["valid_range"], v["range_source"]) == ("%", [-1.0, 150.0], "cf-default:relative_humidity")


def test_bad_range_syntax_is_one_line(tmp_path, run_nc, capsys):
    for bad in ("t=10", "t=a:b", "t=", "=1:2"):
        assert main(["ingest", "climate", "--out", str(tmp_path / "s.zarr"), "--var", "t", "--range", bad, f"r1={run_nc}"]) == 2
        assert "ConfigError: --range must look like" in cli_error(capsys)
    assert main(["ingest", "climate", "--out", str(tmp_path / "s.zarr"), "--var", "t", "--range", "t=5:1", f"r1={run_nc}"]) == 2
    assert "valid range of 't' must be finite with LO <= HI, got [5.0, 1.0]" in cli_error(capsys)
    assert main(["ingest", "climate", "--out", str(tmp_path / "s.zarr"), "--var", "t", "--range", "ta=0:1", f"r1={run_nc}"]) == 2
    assert "--range names ta, not among the variables ingested (--var t)" in cli_error(capsys)


@settings(max_examples=50, deadline=None)
@given(lo=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
       hi=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)))
def test_range_syntax_round_trips(lo, hi):
    text = f"ta={'' if lo is None else repr(lo)}:{'' if hi is None else repr(hi)}"
    assert _ranges([text]) == {"ta": (lo, hi)}


def test_units_spellings_and_families():
    assert cf_default("eastward_wind", "m s-1") == cf_default("eastward_wind", "m/s") == cf_default("eastward_wind", "m.s^-1")
    assert cf_default("air_temperature", "degC") is None  # another unit: no kelvin range applied
    assert cf_default("surface_air_pressure", "hPa") == (0.0, 1.0e6)
    assert cf_default("no_such_name", "K") is None
    for name, rows in CF_RANGES.items():
        for _, (lo, hi) in rows:
            assert lo is not None and hi is not None and lo < hi, name


def rotated_pole() -> xr.Dataset:
    rlat, rlon = np.linspace(-10, 10, 6), np.linspace(-15, 15, 7)
    lat2d = 40 + rlat[:, None] + 0.1 * rlon[None, :]
    lon2d = 10 + rlon[None, :] + 0.1 * rlat[:, None]
    return xr.Dataset(
        {"tas": (("time", "rlat", "rlon"), 280 + np.zeros((2, 6, 7)), {"standard_name": "air_temperature", "units": "K",
                                                                          "grid_mapping": "rotated_pole"}),
         "rotated_pole": ((), 0, {"grid_mapping_name": "rotated_latitude_longitude", "grid_north_pole_latitude": 39.25,
                                  "grid_north_pole_longitude": -162.0})},
        coords={"time": [0.0, 1.0], "rlat": rlat, "rlon": rlon, "lat": (("rlat", "rlon"), lat2d, {"standard_name": "latitude"}),
                "lon": (("rlat", "rlon"), lon2d, {"standard_name": "longitude"})},
    )


def test_rotated_pole_and_curvilinear_grids_are_refused_naming_the_coordinate(tmp_path, capsys):
    src = tmp_path / "cordex.nc"
    rotated_pole().to_netcdf(src)
    assert main(["ingest", "climate", "--out", str(tmp_path / "s.zarr"), "--var", "tas", f"eur={src}"]) == 2
    line = cli_error(capsys)
    assert ("variable 'tas' is on a rotated_latitude_longitude grid (coordinates rlat/rlon with grid_mapping 'rotated_pole')"
            in line and "regrid first" in line)
    curvi = rotated_pole().drop_vars("rotated_pole")
    del curvi["tas"].attrs["grid_mapping"]
    curvi = curvi.rename({"rlat": "y", "rlon": "x"}).drop_vars(["y", "x"])
    src2 = tmp_path / "ocean.nc"
    curvi.to_netcdf(src2)
    with pytest.raises(astrobio.IntegrityError, match=r"curvilinear grid \(2-D coordinate 'lat' over y/x\)"):
        ingest_climate({"o": src2}, tmp_path / "o.zarr", variables=["tas"])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_runs_ingest_like_netcdf(tmp_path, run_nc, zarr_format):
    src = tmp_path / f"run-v{zarr_format}.zarr"
    gcm_dataset().to_zarr(src, zarr_format=zarr_format, consolidated=zarr_format == 2)
    a = ingest_climate({"r1": run_nc}, tmp_path / "from-nc.zarr", variables=["t", "u"])
    b = ingest_climate({"r1": src}, tmp_path / "from-zarr.zarr", variables=["t", "u"])
    ra = astrobio.CubeReader(a, normalize="none").read(range(4)).cubes
    rb = astrobio.CubeReader(b, normalize="none").read(range(4)).cubes
    np.testing.assert_array_equal(ra, rb)
    assert ra.shape == (4, 2, 3, 8, 12)
    prov = astrobio.open_store(b).manifest["provenance"]["sources"]
    assert any(s["name"] in ("zarr.json", ".zmetadata", ".zgroup") for s in prov)


def test_not_a_zarr_folder_is_read_as_netcdf_files(tmp_path):
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(astrobio.DataNotFoundError, match="no NetCDF files"):
        ingest_climate({"r": empty}, tmp_path / "s.zarr", variables=["t"])
    with pytest.raises(ConfigError):
        ingest_climate({"r": empty}, tmp_path / "s.zarr", variables=["t"], valid_ranges={"t": (float("nan"), 1.0)})


def test_shard_samples_packs_runs_into_shards_that_read_like_the_plain_store(tmp_path, run_nc, capsys):
    plain, sharded = tmp_path / "plain.zarr", tmp_path / "sharded.zarr"
    second = tmp_path / "run2.nc"
    gcm_dataset(t_offset=3.0).to_netcdf(second)
    runs = [f"r1={run_nc}", f"r2={second}"]  # 4 + 4 samples: shards of 3 straddle the runs
    assert main(["ingest", "climate", "--out", str(plain), "--var", "t", *runs]) == 0
    assert main(["ingest", "climate", "--out", str(sharded), "--var", "t", "--shard-samples", "3", *runs]) == 0
    assert sorted(p.name for p in (sharded / "cubes" / "c").iterdir()) == ["0", "1", "2"]
    a, b = astrobio.CubeReader(plain, normalize="none"), astrobio.CubeReader(sharded, normalize="none")
    np.testing.assert_array_equal(b.read(range(8)).cubes, a.read(range(8)).cubes)
    assert astrobio.open_store(sharded).verify()["ok"]
    # a re-run with the same shards is up to date; another shard size rebuilds
    before = (sharded / "zarr.json").stat().st_mtime_ns
    assert main(["ingest", "climate", "--out", str(sharded), "--var", "t", "--shard-samples", "3", *runs]) == 0
    assert (sharded / "zarr.json").stat().st_mtime_ns == before
    assert main(["ingest", "climate", "--out", str(sharded), "--var", "t", "--shard-samples", "8", *runs]) == 0
    assert sorted(p.name for p in (sharded / "cubes" / "c").iterdir()) == ["0"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # a flag of the climate format only: the catalogue's parser refuses it
        main(["ingest", "catalogue", "--out", str(tmp_path / "c.zarr"), "--shard-samples", "3", str(run_nc)])
    assert e.value.code == 2 and "unrecognized arguments: --shard-samples" in capsys.readouterr().err
