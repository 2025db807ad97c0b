"""The dataset registry on real databases (SQLite; PostgreSQL when configured): versions,
status, quality reports, lineage, keys, the CLI, and that migrations match the models."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy
from conftest import build_fixture
from registry_fixtures import backend  # noqa: F401  (fixture)

import astrobio
from astrobio.errors import ConfigError, DataNotFoundError, IntegrityError
from astrobio.registry import lineage
from astrobio.registry.keys import check_key, create_key, list_keys, revoke_key


def test_register_makes_a_ready_version_with_counts_and_quality(backend, tmp_path):
    fx = build_fixture(tmp_path / "a.zarr")
    reg = backend.registry()
    v = reg.register(fx.path, "climate")
    assert (v["ref"], v["status"], v["kind"], v["quality_success"]) == ("climate@v1", "ready", "cube", True)
    assert v["digest"] == astrobio.open_store(fx.path).manifest["content_digest"]
    assert v["splits"]["train"] == {"runs": 2, "samples": 7} and v["splits"]["test"] == {"runs": 1, "samples": 5}
    assert v["provenance"]["source"] == "test fixture" and "tools" in v["provenance"]
    q = reg.quality("climate@v1")
    st = q["statistics"]
    assert q["success"] and st["unsuccessful_expectations"] == 0
    assert st["evaluated_expectations"] == len(q["results"]) == st["successful_expectations"]
    names = {r["expectation"] for r in q["results"]}
    assert {"expect_chunk_checksum_valid", "expect_chunk_finite_valid", "expect_chunk_range_valid", "expect_no_run_in_two_splits",
            "expect_no_identical_chunk_in_two_splits", "expect_no_duplicate_samples", "expect_no_drift_from_previous_version",
            "expect_store_unchanged_since_registration"} <= names
    for r in q["results"]:
        assert set(r) == {"expectation", "success", "observed_value", "expected", "details"}
    assert set(q["variables"]) == {"var0", "var1", "var2"} and q["histograms"]["var0"]["counts"]
    json.dumps(q, allow_nan=False)  # strict JSON


def test_versions_are_numbered_consecutively_and_reregistering_unchanged_is_a_noop(backend, tmp_path):
    fx = build_fixture(tmp_path / "a.zarr")
    reg = backend.registry()
    assert [reg.register(fx.path, "d")["version"] for _ in range(3)] == [1, 2, 3]
    assert reg.register(fx.path, "d", if_changed=True)["version"] == 3
    assert reg.datasets()[0] == {**reg.datasets()[0], "name": "d", "versions": 3, "latest_ready": 3}
    assert [v["ref"] for v in reg.dataset("d")["versions"]] == ["d@v1", "d@v2", "d@v3"]


def test_concurrent_version_allocation_gives_unique_consecutive_numbers(backend):
    reg = backend.registry()
    got, errors = [], []

    def alloc() -> None:
        try:
            got.append(reg.begin_version("race"))
        except Exception as e:  # recorded and asserted below
            errors.append(e)

    threads = [threading.Thread(target=alloc) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == list(range(1, 13))


def test_a_store_that_fails_the_scan_is_recorded_failed_never_ready(backend, tmp_path):
    fx = build_fixture(tmp_path / "a.zarr")
    chunk = fx.path / "cubes" / "c" / "2" / "0" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    reg = backend.registry()
    with pytest.raises(IntegrityError, match="bad chunks"):
        reg.register(fx.path, "broken")
    v = reg.version("broken@v1")
    assert v["status"] == "failed" and "checksum" in v["error"]
    with pytest.raises(DataNotFoundError, match="no ready version"):
        reg.version("broken")
    with pytest.raises(DataNotFoundError, match="failed, not ready"):
        reg.load("broken@v1")


def test_retire_hides_a_version_from_the_newest_ready(backend, tmp_path):
    fx = build_fixture(tmp_path / "a.zarr")
    reg = backend.registry()
    reg.register(fx.path, "d")
    reg.register(fx.path, "d")
    assert reg.retire("d@v2")["status"] == "retired"
    assert reg.version("d")["ref"] == "d@v1"
    with pytest.raises(ConfigError, match="explicit version"):
        reg.retire("d")
    n = reg.begin_version("d")
    with pytest.raises(ConfigError, match="still collecting"):
        reg.retire(f"d@v{n}")
    with pytest.raises(ConfigError, match="must match"):
        reg.register(fx.path, "../evil")


def _shifted_store(path: Path, fx, shift: float, split=None) -> Path:
    """The fixture's runs with every variable moved by `shift` of its std."""
    std = np.asarray([v.std() for v in np.moveaxis(fx.cubes, 1, 0)], np.float32)[None, :, None, None, None]
    runs = [(k, c + shift * std, fx.params[k]) for k, c in fx.runs.items()]
    astrobio.write_store(path, runs, variables=fx.variables, params=[astrobio.Variable("p0", "1", (-50.0, 50.0)),
                                                                     astrobio.Variable("p1", "1", (-50.0, 50.0))],
                         split=split or {"train": ["run-0", "run-1"], "test": ["run-2"]})
    return path


def test_drift_against_the_previous_version_is_flagged_over_the_threshold(backend, tmp_path):
    fx = build_fixture(tmp_path / "a.zarr")
    reg = backend.registry()
    reg.register(fx.path, "d")
    reg.register(_shifted_store(tmp_path / "small.zarr", fx, 0.1), "d")
    reg.register(_shifted_store(tmp_path / "big.zarr", fx, 2.0), "d")
    small, big = reg.quality("d@v2"), reg.quality("d@v3")
    assert small["success"] and small["drift"]["previous"] == "d@v1"
    assert not big["success"] and big["drift"]["previous"] == "d@v2"
    flagged = [r for r in big["results"] if r["expectation"] == "expect_no_drift_from_previous_version" and not r["success"]]
    assert {r["details"]["variable"] for r in flagged} == {"var0", "var1", "var2"}
    assert all(r["observed_value"]["mean_shift"] > 0.5 for r in flagged)


@pytest.mark.parametrize("shard_samples", [None, 3], ids=["one-object-per-sample", "sharded"])
def test_leakage_and_duplicate_samples_are_reported(backend, tmp_path, shard_samples):
    """Sharded stores share objects between samples: their samples are compared by value."""
    fx = build_fixture(tmp_path / "a.zarr")
    cubes = fx.runs["run-0"]
    prm = fx.params["run-0"]
    astrobio.write_store(tmp_path / "leak.zarr", [("a", cubes, prm), ("b", cubes, prm), ("c", fx.runs["run-1"], fx.params["run-1"])],
                         variables=fx.variables, params=[astrobio.Variable("p0", "1"), astrobio.Variable("p1", "1")],
                         split={"train": ["a", "c"], "test": ["b"]}, shard_samples=shard_samples)
    reg = backend.registry()
    reg.register(tmp_path / "leak.zarr", "leaky")
    q = reg.quality("leaky@v1")
    res = {r["expectation"]: r for r in q["results"]}
    assert not q["success"]
    assert not res["expect_no_identical_chunk_in_two_splits"]["success"]
    assert res["expect_no_identical_chunk_in_two_splits"]["observed_value"] == len(cubes)
    assert res["expect_no_duplicate_samples"]["observed_value"] == len(cubes)
    assert res["expect_no_run_in_two_splits"]["success"]


def test_table_and_graph_stores_register_with_their_kind(backend, tmp_path):
    from astrobio.datasets.sources import package_file
    from astrobio.ingest.catalogue import ingest_catalogue
    from astrobio.ingest.metabolic import ingest_metabolic

    table = ingest_catalogue(package_file("spright", "data/exoplanet_eu.csv"), tmp_path / "cat.zarr", schema="exoplanet.eu")
    graphs = ingest_metabolic({"e_coli_core": package_file("cobra", "data/textbook.xml.gz")}, tmp_path / "met.zarr")
    reg = backend.registry()
    t = reg.register(table, "planets")
    g = reg.register(graphs, "networks")
    assert (t["kind"], t["status"], g["kind"], g["status"]) == ("table", "ready", "graph", "ready")
    assert t["splits"]["all"]["samples"] > 1000
    qt = reg.quality("planets@v1")
    assert "pl_rade" in qt["variables"] and qt["variables"]["pl_rade"]["count"] > 0
    assert {r["expectation"] for r in qt["results"]} >= {"expect_no_duplicate_samples", "expect_column_values_finite_and_in_range"}
    assert reg.quality("networks@v1")["variables"]["C"]["count"] == 72  # e_coli_core: 72 metabolites
    assert reg.load("networks@v1")["summary"]["models"]["e_coli_core"]["reactions"] == 95


def test_lineage_resolve_record_and_show(backend, tmp_path):
    fx = build_fixture(tmp_path / "a.zarr")
    reg = backend.registry()
    reg.register(fx.path, "climate")
    uri, digest, kind = lineage.resolve_data_ref("climate@v1")
    assert (Path(uri), kind) == (fx.path.resolve(), "cube") and digest.startswith("sha256:")
    assert lineage.is_data_ref("climate@v1") and not lineage.is_data_ref("/data/x@y/store.zarr")
    assert lineage.lineage_record("climate@v1", digest, uri) == {"ref": "climate@v1", "digest": digest, "uri": uri}
    lineage.record_run("climate@v1", str(tmp_path / "run1"), {"model": "datacube", "best_score": 0.25, "monitor": "val/rmse"})
    runs = reg.version("climate@v1")["runs"]
    assert len(runs) == 1 and runs[0]["model"] == "datacube" and runs[0]["metrics"]["best_score"] == 0.25
    shutil.rmtree(fx.path / "cubes" / "c" / "1")
    with pytest.raises(IntegrityError, match="cannot be loaded"):
        lineage.resolve_data_ref("climate@v1")
    q = reg.quality("climate@v1")
    live = [r for r in q["results"] if r["expectation"] == "expect_store_unchanged_since_registration"][0]
    assert not q["success"] and not live["success"] and "digest" in live["observed_value"]


def test_mlflow_dataset_input_makes_the_run_searchable_by_dataset(backend, tmp_path, monkeypatch):
    import mlflow

    fx = build_fixture(tmp_path / "a.zarr")
    backend.registry().register(fx.path, "climate")
    uri, digest, kind = lineage.resolve_data_ref("climate@v1")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    exp = client.create_experiment("astrobio-test")
    run = client.create_run(exp)
    summary = backend.registry().load("climate@v1")["summary"]
    lineage.log_mlflow_dataset(client, run.info.run_id, "climate@v1", digest, uri, kind, summary)
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.source_type) for i in inputs] == [("climate@v1", "local")]
    assert json.loads(inputs[0].dataset.source)["uri"] == uri
    assert [c["name"] for c in json.loads(inputs[0].dataset.schema)["mlflow_colspec"]] == ["var0", "var1", "var2"]


def test_keys_are_stored_hashed_and_can_be_revoked(backend):
    reg = backend.registry()
    key, rec = create_key(reg, "nb", "read")
    assert key.startswith("ab_") and check_key(reg, key).status == "ok" and check_key(reg, key).scopes == ("read",)
    assert check_key(reg, key[:-1] + ("x" if key[-1] != "x" else "y")).status == "unknown"
    assert check_key(reg, "").status == "unknown" and check_key(reg, "ab_nope").status == "unknown"
    from sqlalchemy import select

    from astrobio.registry._db import read_session
    from astrobio.registry.models import ApiKey

    with read_session(reg.engine) as s:
        stored = s.scalars(select(ApiKey)).one()
        assert key.split("_", 2)[2] not in (stored.secret_hash, stored.key_id, stored.name)
    assert revoke_key(reg, "nb") == 1 and check_key(reg, key).status == "revoked"
    assert list_keys(reg)[0]["revoked"] is not None
    with pytest.raises(DataNotFoundError):
        revoke_key(reg, "nb")


def test_cli_registry_and_keys(backend, tmp_path, capsys):
    from astrobio.cli import main

    fx = build_fixture(tmp_path / "a.zarr")
    assert main(["registry", "add", str(fx.path), "--name", "clim", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ref"] == "clim@v1"
    assert main(["registry", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "VERSIONS", "LATEST_READY", "CREATED", "DESCRIPTION"] and "clim" in out
    assert main(["registry", "show", "clim@v1"]) == 0 and "split    train: 2 runs, 7 samples" in capsys.readouterr().out
    assert main(["registry", "show", "clim@v7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("astrobio: error: DataNotFoundError: no version clim@v7")
    assert main(["keys", "create", "ci", "--write"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ab_") and "shown only now" in captured.err
    assert main(["keys", "list", "--json"]) == 0 and json.loads(capsys.readouterr().out)[0]["scopes"] == "read,write"
    assert main(["registry", "retire", "clim@v1"]) == 0 and "retired" in capsys.readouterr().out


def test_migrations_match_the_models(backend):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from astrobio.registry.models import VERSION_TABLE, Base

    reg = backend.registry()
    with reg.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), Base.metadata)
        tables = set(sqlalchemy.inspect(conn).get_table_names())
    assert diff == []
    # the registry's alembic history is its own: optuna (astrobio tune) keeps `alembic_version`
    assert VERSION_TABLE in tables and "alembic_version" not in tables


def test_the_registry_and_optuna_share_one_database(tmp_path, monkeypatch):
    """`astrobio tune` keeps its studies in the registry's database by default; the two alembic
    histories must not collide, in either order."""
    import optuna

    from astrobio.registry import open_registry

    monkeypatch.setenv("ASTROBIO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASTROBIO_REGISTRY_URL", raising=False)
    open_registry()
    url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    study = optuna.create_study(storage=optuna.storages.RDBStorage(url), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert open_registry().datasets() == []  # the registry still opens (and upgrades nothing)
    again = optuna.load_study(study_name="s", storage=optuna.storages.RDBStorage(url))
    assert len(again.trials) == 2
