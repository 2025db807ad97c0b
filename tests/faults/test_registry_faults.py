"""Fault matrix of the registry service (docs/reliability.md): bad keys, bad bodies, path
traversal, concurrent collects, a server killed mid-collect, stores damaged after registration.
Every test talks to a real uvicorn server over HTTP (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import concurrent.futures as cf
import shutil
import time

import httpx
import pytest
from conftest import build_fixture
from registry_fixtures import BACKENDS, backend, drop_backend, make_backend, real_sources, start_server, wait_job  # noqa: F401

from astrobio.errors import IntegrityError
from astrobio.registry import lineage

MAX_BODY = 4096


@pytest.fixture(scope="module", params=BACKENDS)
def svc(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"faults-{request.param}")
    b = make_backend(request.param, work / "home")
    roots = work / "sources"
    src = real_sources(roots)
    (work / "outside.txt").write_text("secret outside the root\n")
    (roots / "escape.csv").symlink_to(work / "outside.txt")
    server = start_server(b, [roots], max_body=MAX_BODY)
    keys = {"read": b.key("read", "r"), "write": b.key("write", "w")}
    revoked = b.key("write", "gone")
    from astrobio.registry.keys import revoke_key

    revoke_key(b.registry(), "gone")
    yield {"b": b, "s": server, "keys": {**keys, "revoked": revoked}, "src": src, "work": work}
    server.stop()
    drop_backend(b)


def _post(svc, body=None, key="write", **kw):
    headers = {"X-API-Key": svc["keys"][key]} if key else {}
    return httpx.post(f"{svc['s'].api}/datasets/collect", json=body, headers={**headers, **kw.pop("headers", {})}, timeout=30, **kw)


CAT = {"format": "catalogue", "dataset": "cat", "source": "exoplanet_eu.csv", "schema": "exoplanet.eu"}


@pytest.mark.parametrize("key,status", [(None, 401), ("bogus", 401), ("revoked", 403), ("read", 403)])
def test_keys_missing_unknown_revoked_or_without_scope(svc, key, status):
    headers = {"X-API-Key": svc["keys"].get(key, "ab_0123456789abcdef_notthesecret")} if key else {}
    r = httpx.post(f"{svc['s'].api}/datasets/collect", json=CAT, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    if key in (None, "bogus"):
        assert httpx.get(f"{svc['s'].api}/datasets", headers=headers).status_code == 401


def test_unknown_dataset_version_and_job_are_404(svc):
    h = {"X-API-Key": svc["keys"]["read"]}
    api = svc["s"].api
    assert httpx.get(f"{api}/datasets/nope", headers=h).status_code == 404
    assert httpx.get(f"{api}/datasets/nope/versions/3", headers=h).status_code == 404
    assert httpx.get(f"{api}/datasets/nope/versions/3/quality", headers=h).status_code == 404
    assert httpx.get(f"{api}/jobs/{'0' * 32}", headers=h).status_code == 404


def test_malformed_json_unknown_and_missing_fields_are_422_naming_the_field(svc):
    r = _post(svc, content=b'{"format": "catalogue", "dataset": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "json_invalid"
    r = _post(svc, {**CAT, "sneaky": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "sneaky"
    r = _post(svc, {k: v for k, v in CAT.items() if k != "source"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "source"
    r = _post(svc, {**CAT, "format": "spreadsheet"})
    assert r.status_code == 422 and "using 'format'" in r.json()["errors"][0]["msg"]  # the discriminator field is named
    r = _post(svc, {**CAT, "dataset": "../up"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == "dataset"


def test_huge_bodies_are_refused_413(svc):
    big = {**CAT, "source": "x" * (MAX_BODY * 4)}
    assert _post(svc, big).status_code == 413

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(64):
            yield b"x" * 1024

    r = _post(svc, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("source", ["../outside.txt", "/etc/passwd", "escape.csv", "sub/../../outside.txt", "missing.csv"])
def test_source_paths_are_confined_to_the_roots(svc, source):
    r = _post(svc, {**CAT, "source": source})
    assert r.status_code == 422, r.text
    d = r.json()["errors"][0]
    assert d["loc"] == ["body", "source"] and ("outside the allowed source roots" in d["msg"] or "does not exist" in d["msg"])
    r = _post(svc, {"format": "metabolic", "dataset": "m", "models": {"evil": source}})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "models", "evil"]


def test_concurrent_collects_of_one_dataset_get_unique_consecutive_versions(svc):
    with cf.ThreadPoolExecutor(6) as pool:
        accepted = list(pool.map(lambda _: _post(svc, {**CAT, "dataset": "race"}).json(), range(6)))
    refs = sorted(a["ref"] for a in accepted)
    assert refs == sorted(f"race@v{i}" for i in range(1, 7))
    jobs = [wait_job(svc["s"].api, svc["keys"]["read"], a["job_id"]) for a in accepted]
    assert [j["state"] for j in jobs] == ["succeeded"] * 6
    versions = httpx.get(f"{svc['s'].api}/datasets/race", headers={"X-API-Key": svc["keys"]["read"]}).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3, 4, 5, 6] and {v["status"] for v in versions} == {"ready"}
    assert len({v["uri"] for v in versions}) == 6


def test_a_store_deleted_or_corrupted_after_registration_is_refused_and_quality_says_why(svc, tmp_path):
    b, api, h = svc["b"], svc["s"].api, {"X-API-Key": svc["keys"]["read"]}
    gone = build_fixture(tmp_path / "gone.zarr")
    bad = build_fixture(tmp_path / "bad.zarr")
    reg = b.registry()
    reg.register(gone.path, "gone")
    reg.register(bad.path, "bad")
    shutil.rmtree(gone.path)
    chunk = bad.path / "cubes" / "c" / "0" / "0" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 1]))
    for name, why in (("gone", "DataNotFoundError"), ("bad", "digest")):
        r = httpx.get(f"{api}/datasets/{name}/versions/1/load", headers=h)
        assert r.status_code == 409 and why in r.json()["detail"], r.text
        q = httpx.get(f"{api}/datasets/{name}/versions/1/quality", headers=h).json()
        live = [x for x in q["results"] if x["expectation"] == "expect_store_unchanged_since_registration"][0]
        assert not q["success"] and not live["success"] and why in live["observed_value"]
        with pytest.raises(IntegrityError):  # training resolves `--data name@v1` through the same check
            lineage.resolve_data_ref(f"{name}@v1", b.registry())


def test_keys_and_credentials_never_reach_the_server_log(svc):
    for key in svc["keys"].values():
        httpx.get(f"{svc['s'].api}/datasets", headers={"X-API-Key": key})
    log = svc["s"].log.read_text()
    assert "GET /api/v1/datasets" in log
    for key in svc["keys"].values():
        assert key not in log and key.split("_", 2)[2] not in log


@pytest.mark.parametrize("bk", BACKENDS)
def test_collect_killed_mid_way_is_failed_or_absent_never_ready(bk, tmp_path):
    b = make_backend(bk, tmp_path / "home")
    try:
        src = real_sources(tmp_path / "sources")
        server = start_server(b, [tmp_path / "sources"], log_name="first.log")
        key = b.key("write")
        r = httpx.post(f"{server.api}/datasets/collect", headers={"X-API-Key": key}, timeout=30,
                       json={"format": "metabolic", "dataset": "big", "models": {"iJO1366": src["ijo"].name}})
        assert r.status_code == 202
        acc = r.json()
        # the kill point is the job's own progress report: "ingesting" (sources confined, the
        # SBML parse of iJO1366 under way: seconds of work before anything is written), never a delay
        deadline = time.monotonic() + 120
        while (job := httpx.get(f"{server.api}/jobs/{acc['job_id']}", headers={"X-API-Key": key}).json())["progress"] != "ingesting":
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.01)
        server.stop(kill=True)  # SIGKILL
        assert server.proc.returncode == -9
        v = b.registry().version(acc["ref"])
        assert v["status"] == "collecting" and not (b.home / "registry" / "stores" / "big" / "v1.zarr" / "zarr.json").exists()
        server = start_server(b, [tmp_path / "sources"], log_name="second.log")
        try:
            h = {"X-API-Key": key}
            v = httpx.get(f"{server.api}/datasets/big/versions/1", headers=h).json()
            assert v["status"] == "failed" and "interrupted" in v["error"]
            assert httpx.get(f"{server.api}/jobs/{acc['job_id']}", headers=h).json()["state"] == "failed"
            assert httpx.get(f"{server.api}/datasets/big/versions/1/load", headers=h).status_code == 404
            again = httpx.post(f"{server.api}/datasets/collect", headers=h, timeout=30,
                               json={"format": "metabolic", "dataset": "big", "models": {"core": src["textbook"].name}}).json()
            assert again["ref"] == "big@v2" and wait_job(server.api, key, again["job_id"])["state"] == "succeeded"
        finally:
            server.stop()
    finally:
        drop_backend(b)
