"""Cube stores carry CF coordinate arrays: xarray opens them with named variables, lat / lon /
level coordinates and units; the content digest is unchanged by them, and stores written without
them still open and verify."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import astrobio
from astrobio.datasets.climate import build_climate_store
from astrobio.stores.cube_coords import COORDINATE_ARRAYS


@pytest.fixture(scope="module")
def climate(tmp_path_factory) -> Path:
    return build_climate_store(tmp_path_factory.mktemp("coords") / "climate.zarr")


def test_default_climate_store_opens_in_xarray_with_coordinates(climate: Path) -> None:
    store = astrobio.open_store(climate)
    ds = xr.open_zarr(climate, consolidated=False)
    assert list(ds["variable"].values) == [v.name for v in store.variables] == ["ta", "ua", "va", "hus", "wap"]
    assert list(ds["variable_units"].values) == [v.units for v in store.variables]
    assert ds["variable_standard_name"].values[0] == "air_temperature"
    assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"
    assert ds["level"].attrs["standard_name"] == "atmosphere_sigma_coordinate"
    np.testing.assert_allclose(ds["lat"].values, store.manifest["coords"]["lat"]["values"])
    np.testing.assert_allclose(ds["level"].values, store.manifest["coords"]["level"]["values"])
    assert ds["cubes"].dims == ("sample", "variable", "level", "lat", "lon")
    assert list(ds["param"].values) == [p.name for p in store.params]
    # the run of each sample, as the manifest tiles them
    first = store.runs[1]
    assert ds["run"].values[first.start] == first.id
    fields = ds["cubes"].to_dataset("variable")
    ta = fields["ta"].isel(sample=0).sel(level=ds["level"].max())
    assert 100 < float(ta.mean()) < 400  # kelvin, lowest level


def test_coordinates_are_not_digested_and_old_stores_still_open(climate: Path, tmp_path: Path) -> None:
    store = astrobio.open_store(climate)
    assert set(store.manifest["digests"]) == {"cubes", "params"}
    copy = tmp_path / "old.zarr"
    shutil.copytree(climate, copy)
    for name in COORDINATE_ARRAYS:  # a store written before the coordinate arrays existed
        shutil.rmtree(copy / name, ignore_errors=True)
    old = astrobio.open_store(copy)
    old.verify_digest()
    assert old.manifest["content_digest"] == store.manifest["content_digest"]
    assert old.verify()["ok"]
    assert "lat" not in xr.open_zarr(copy, consolidated=False).coords


def test_cf_xarray_finds_the_axes(climate: Path) -> None:
    cf_xarray = pytest.importorskip("cf_xarray", reason="the dev extra's cf-xarray")
    assert cf_xarray
    ds = xr.open_zarr(climate, consolidated=False)
    assert ds.cf["latitude"].name == "lat" and ds.cf["longitude"].name == "lon"
    assert ds.cf["Z"].name == "level"
