"""Registry versions whose store lives in object storage (s3://, a real local S3 server): a cube,
table or graph store is registered where it is (never copied) after the same scan, digest check
and quality report as a local one; `--data NAME@vN` trains from it and the run records the URL;
a store changed at the URL after registration is refused, in the library, the trainer and the
REST API (409), exactly like a local one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import build_fixture
from registry_fixtures import Backend, backend, start_server  # noqa: F401  (fixture)
from s3_fixtures import S3, s3, s3_session, upload_fixture  # noqa: F401  (fixtures)

import astrobio
from astrobio.cli import main as cli_main
from astrobio.datasets.sources import package_file
from astrobio.errors import DataNotFoundError, IntegrityError
from astrobio.ingest.catalogue import ingest_catalogue
from astrobio.ingest.metabolic import ingest_metabolic
from astrobio.registry import Client, lineage
from astrobio.stores import _remote
from astrobio.train.cli import main as train_main

TRAIN = ["--max-epochs", "1", "--batch-size", "4", "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none",
         "--set", "trainer.plots=false"]


def _fresh(s3: S3, name: str) -> tuple[str, str]:
    """(prefix, URL) of a new location: the database backends share one bucket."""
    prefix = f"registry/{uuid.uuid4().hex[:12]}/{name}"
    return prefix, s3.url(prefix)


def _flip_a_byte(s3: S3, key: str) -> None:
    data = bytearray(s3.get(key))
    data[len(data) // 2] ^= 0x01
    s3.put(key, bytes(data))


def _without_uri(report: dict) -> list[dict]:
    """The report's results, minus the uri the digest expectation names (local path vs URL)."""
    return [{**r, "details": {k: v for k, v in r["details"].items() if k != "uri"}} for r in report["results"]]


def test_a_cube_store_at_a_url_registers_in_place_with_the_local_report(backend: Backend, s3: S3, tmp_path: Path) -> None:
    fx = build_fixture(tmp_path / "a.zarr")
    remote = upload_fixture(s3, fx)
    objects = s3.keys("")
    reg = backend.registry()
    v = reg.register(remote.url, "climate")
    assert (v["ref"], v["status"], v["kind"], v["uri"], v["quality_success"]) == ("climate@v1", "ready", "cube", remote.url, True)
    assert v["digest"] == astrobio.open_store(fx.path).manifest["content_digest"]
    assert v["splits"]["train"] == {"runs": 2, "samples": 7}
    assert s3.keys("") == objects  # nothing copied or written in the bucket
    assert not (backend.home / "registry" / "stores").exists()  # nor into the registry's store root
    local = reg.register(fx.path, "climate-local")
    q_remote, q_local = reg.quality("climate@v1"), reg.quality("climate-local@v1")
    assert _without_uri(q_remote) == _without_uri(q_local)  # scan, statistics, chunk hashes: the same store
    assert q_remote["histograms"] == q_local["histograms"] and q_remote["variables"] == q_local["variables"]
    assert local["digest"] == v["digest"]
    assert s3.secret not in json.dumps([v, q_remote])


def test_leakage_is_found_from_the_chunk_objects(backend: Backend, s3: S3, tmp_path: Path) -> None:
    fx = build_fixture(tmp_path / "a.zarr")
    cubes, prm = fx.runs["run-0"], fx.params["run-0"]
    _, url = _fresh(s3, "leaky.zarr")
    astrobio.write_store(url, [("a", cubes, prm), ("b", cubes, prm), ("c", fx.runs["run-1"], fx.params["run-1"])],
                         variables=fx.variables, params=[astrobio.Variable("p0", "1"), astrobio.Variable("p1", "1")],
                         split={"train": ["a", "c"], "test": ["b"]})
    reg = backend.registry()
    reg.register(url, "leaky")
    res = {r["expectation"]: r for r in reg.quality("leaky@v1")["results"]}
    assert not res["expect_no_identical_chunk_in_two_splits"]["success"]
    assert res["expect_no_identical_chunk_in_two_splits"]["observed_value"] == len(cubes)
    assert res["expect_no_duplicate_samples"]["observed_value"] == len(cubes)


def test_table_and_graph_stores_at_urls_register_from_the_cli(backend: Backend, s3: S3, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (table_prefix, table), (_, graphs) = _fresh(s3, "planets.zarr"), _fresh(s3, "metabolic.zarr")
    ingest_catalogue(package_file("spright", "data/exoplanet_eu.csv"), table, schema="exoplanet.eu")
    ingest_metabolic({"e_coli_core": package_file("cobra", "data/textbook.xml.gz")}, graphs)
    assert cli_main(["registry", "add", table, "--name", "planets", "--json"]) == 0
    t = json.loads(capsys.readouterr().out)
    assert (t["ref"], t["kind"], t["status"], t["uri"]) == ("planets@v1", "table", "ready", table)
    assert t["splits"]["all"]["samples"] > 1000
    assert cli_main(["registry", "add", graphs, "--name", "networks"]) == 0
    assert f"uri      {graphs}" in capsys.readouterr().out
    assert cli_main(["registry", "show", "networks@v1"]) == 0
    shown = capsys.readouterr().out
    assert "networks@v1  ready  graph" in shown and f"uri      {graphs}" in shown
    reg = backend.registry()
    qt = reg.quality("planets@v1")
    assert qt["success"] and qt["variables"]["pl_rade"]["count"] > 0
    assert {r["expectation"] for r in qt["results"]} >= {"expect_no_duplicate_samples", "expect_column_values_finite_and_in_range"}
    assert reg.quality("networks@v1")["variables"]["C"]["count"] == 72  # e_coli_core: 72 metabolites
    assert reg.load("networks@v1")["summary"]["models"]["e_coli_core"]["reactions"] == 95
    _flip_a_byte(s3, next(k for k in s3.keys(f"{table_prefix}/pl_rade/") if "/c/" in k))
    with pytest.raises(IntegrityError, match="planets@v1 cannot be loaded: IntegrityError: s3://.*array 'pl_rade' digest"):
        reg.load("planets@v1")


def test_a_missing_store_at_a_url_is_recorded_failed(backend: Backend, s3: S3) -> None:
    _, url = _fresh(s3, "absent.zarr")
    reg = backend.registry()
    with pytest.raises(DataNotFoundError, match=f"zarr.json is missing\\): {url}"):
        reg.register(url, "absent")
    v = reg.version("absent@v1")
    assert v["status"] == "failed" and v["uri"] == url and "zarr.json is missing" in v["error"]


def test_training_from_a_registered_url_records_it_and_a_changed_store_is_refused(backend: Backend, s3: S3, climate_slice: Path,
                                                                                  tmp_path: Path,
                                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    prefix, url = _fresh(s3, "slice.zarr")
    _remote.upload(climate_slice, url)
    ref = backend.registry().register(url, "slice")["ref"]
    assert lineage.resolve_data_ref(ref)[0] == url
    out = tmp_path / "run"
    assert train_main(["--data", ref, "--output-dir", str(out), *TRAIN]) == 0
    summary = json.loads((out / "summary.json").read_text())
    version = backend.registry().version(ref)
    assert summary["data"] == {"ref": ref, "digest": version["digest"], "uri": url}
    assert summary["store"] == url and summary["store_digest"] == version["digest"]
    assert [r["run_dir"] for r in version["runs"]] == [str(out)]
    capsys.readouterr()

    chunk = next(k for k in s3.keys(f"{prefix}/cubes/c/"))
    _flip_a_byte(s3, chunk)
    assert train_main(["--data", ref, "--output-dir", str(tmp_path / "refused"), *TRAIN]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{ref} cannot be loaded" in err[0] and s3.secret not in err[0]
    assert not (tmp_path / "refused" / "checkpoints").exists()
    live = [r for r in backend.registry().quality(ref)["results"] if r["expectation"] == "expect_store_unchanged_since_registration"][0]
    assert not live["success"] and "digest" in live["observed_value"]


def test_the_rest_api_refuses_a_version_changed_at_its_url_with_409(backend: Backend, s3: S3, tmp_path: Path) -> None:
    remote = upload_fixture(s3, build_fixture(tmp_path / "a.zarr"))
    ref = backend.registry().register(remote.url, "fixture")["ref"]
    server = start_server(backend, [tmp_path])  # inherits the S3 endpoint and credentials from the environment
    try:
        key = backend.key("read")
        load = f"{server.api}/datasets/fixture/versions/1/load"
        r = httpx.get(load, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 200 and r.json()["uri"] == remote.url
        with Client(server.base, api_key=key) as c:
            assert c.open(ref).n_samples == 12  # the client opens the store at its URL
        _flip_a_byte(s3, f"{remote.prefix}/cubes/c/3/0/0/0/0")
        r = httpx.get(load, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code == 409 and "digest" in r.text and s3.secret not in r.text
    finally:
        server.stop()
