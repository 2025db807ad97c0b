"""The service run like a real one: a 5xx logged with its traceback under the request id it
returns; an unreachable database answered 503 (readiness and API); SIGTERM lets running
collects finish and fails queued ones, never leaving a version `collecting` or a half-written
store; hidden temporaries of killed collects swept at start. Real uvicorn servers over HTTP."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from registry_fixtures import BACKENDS, _admin, drop_backend, make_backend, real_sources, start_server

from astrobio.serve.app import create_app
from astrobio.serve.settings import Settings


def test_an_unexpected_error_is_a_500_problem_logged_with_traceback_and_request_id(tmp_path, caplog):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", store_root=tmp_path / "stores"))

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug the routes did not expect")

    with TestClient(app) as c, caplog.at_level(logging.ERROR, logger="astrobio.serve.error"):
        r = c.get("/boom", headers={"X-Request-ID": "req-boom-000001"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-boom-000001"
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["request_id"] == "req-boom-000001" and "a bug" not in body["detail"]  # the message stays in the log
    rec = [x for x in caplog.records if getattr(x, "request_id", "") == "req-boom-000001"]
    assert rec and rec[0].exc_info and "a bug the routes did not expect" in str(rec[0].exc_info[1])


def test_a_database_that_is_gone_answers_503_on_ready_and_the_api(tmp_path):
    """SQLite in-process: the pool is emptied and the database file replaced by a folder."""
    db = tmp_path / "r.db"
    app = create_app(Settings(database_url=f"sqlite:///{db}", store_root=tmp_path / "stores"))
    with TestClient(app) as c:
        from astrobio.registry.keys import create_key

        key = create_key(app.state.registry, "k", "read")[0]
        assert c.get("/api/v1/ready").status_code == 200
        app.state.registry.engine.dispose()
        for p in tmp_path.glob("r.db*"):
            p.unlink()
        db.mkdir()
        for r in (c.get("/api/v1/ready"), c.get("/api/v1/datasets", headers={"X-API-Key": key})):
            assert r.status_code == 503 and r.headers["retry-after"] == "5" and r.json()["status"] == 503
        assert c.get("/api/v1/health").status_code == 200  # alive, not ready
        documented = app.openapi()["paths"]["/api/v1/ready"]["get"]["responses"]
        assert "503" in documented


@pytest.mark.parametrize("bk", [p for p in BACKENDS if getattr(p, "values", [p])[0] == "postgresql"])
def test_postgresql_dropped_under_a_live_server_is_503(bk, tmp_path):
    b = make_backend(bk, tmp_path / "home")
    server = start_server(b, [])
    try:
        key = b.key("read")
        assert httpx.get(server.api + "/ready").status_code == 200
        _admin(f'DROP DATABASE "{b.url.rsplit("/", 1)[1]}" WITH (FORCE)')
        for r in (httpx.get(server.api + "/ready"), httpx.get(server.api + "/datasets", headers={"X-API-Key": key})):
            assert r.status_code == 503, r.text
            assert r.json()["request_id"] == r.headers["x-request-id"]
        assert httpx.get(server.api + "/health").status_code == 200
    finally:
        server.stop()
        drop_backend(b)


@pytest.mark.parametrize("bk", BACKENDS)
def test_sigterm_finishes_the_running_collect_and_fails_the_queued_one(bk, tmp_path):
    b = make_backend(bk, tmp_path / "home")
    try:
        src = real_sources(tmp_path / "sources")
        server = start_server(b, [tmp_path / "sources"], extra_args=("--collect-workers", "1"))
        key = b.key("write")
        h = {"X-API-Key": key}

        def collect(name: str, model: str) -> dict:
            r = httpx.post(f"{server.api}/datasets/collect", headers=h, timeout=30,
                           json={"format": "metabolic", "dataset": name, "models": {"m": src[model].name}})
            assert r.status_code == 202, r.text
            return r.json()

        running, queued = collect("big", "ijo"), collect("next", "textbook")
        deadline = time.monotonic() + 60
        while httpx.get(f"{server.api}/jobs/{running['job_id']}", headers=h).json()["state"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.proc.terminate()  # SIGTERM while iJO1366 is being ingested
        # uvicorn stops gracefully, then re-raises the signal (the conventional exit status)
        assert server.proc.wait(timeout=180) in (0, -signal.SIGTERM)
        reg = b.registry()
        first, second = reg.version(running["ref"]), reg.version(queued["ref"])
        assert first["status"] == "ready", first  # finished, checked, registered
        assert reg.load(running["ref"])["digest"] == first["digest"]
        assert second["status"] == "failed" and "interrupted" in second["error"]
        stores = b.home / "registry" / "stores"
        assert not [p for p in stores.rglob(".*") if p.is_dir()]  # no hidden half-written folder
        assert not (stores / "next" / "v1.zarr").exists()
        log = server.log.read_text()
        assert "marked 1 unfinished collect(s) failed" in log and "Application shutdown complete" in log
        assert "Traceback" not in log
    finally:
        drop_backend(b)


def test_hidden_temporaries_of_dead_collects_are_swept_at_start(tmp_path):
    b = make_backend("sqlite", tmp_path / "home")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stores = b.home / "registry" / "stores" / "climate"
    gone = stores / f".v3.zarr.tmp-{dead.pid}-0a1b2c3d"
    kept = stores / f".v4.zarr.tmp-{os.getpid()}-0a1b2c3d"  # a live writer's: not ours to remove
    other = stores / ".notes"
    for p in (gone, kept, other):
        (p / "c").mkdir(parents=True)
        (p / "c" / "0").write_bytes(b"partial chunk")
    server = start_server(b, [])
    try:
        assert not gone.exists() and kept.exists() and other.exists()
        assert gone.name in server.log.read_text()
    finally:
        server.stop()
        drop_backend(b)
