"""Real parts for the registry tests: a SQLite registry in a temporary home, the same on a
throwaway PostgreSQL database when $ASTROBIO_TEST_POSTGRES_URL names a server
(scripts/pg-test-cluster.sh starts one), and a real uvicorn server in a subprocess on a free
127.0.0.1 port, talked to over HTTP. Import the fixtures into a test module to use them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

PG_URL = os.environ.get("ASTROBIO_TEST_POSTGRES_URL", "")
# conftest.py starts a throwaway cluster when PostgreSQL is installed; the skip names what is missing
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL, reason=f"no PostgreSQL server ({os.environ.get('ASTROBIO_PG_UNAVAILABLE', 'not started')}): "
                       "apt-get install postgresql, or set ASTROBIO_TEST_POSTGRES_URL"))]


def _admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(text(sql))
    finally:
        engine.dispose()


@dataclass
class Backend:
    """A fresh, empty registry database and the data home beside it."""

    name: str
    url: str
    home: Path
    _server_logs: list[Path] = field(default_factory=list)

    def registry(self):
        from astrobio.registry import open_registry

        return open_registry(self.url)

    def key(self, scope: str = "read", name: str = "test") -> str:
        from astrobio.registry.keys import create_key

        return create_key(self.registry(), name, scope)[0]


def make_backend(kind: str, home: Path) -> Backend:
    home.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{home / 'registry.db'}", home)
    db = "astrobio_t_" + uuid.uuid4().hex[:12]
    _admin(f'CREATE DATABASE "{db}"')
    return Backend(kind, PG_URL.rsplit("/", 1)[0] + "/" + db, home)


def drop_backend(b: Backend) -> None:
    from astrobio.registry._db import _ENGINES

    engine = _ENGINES.pop(b.url, None)
    if engine is not None:
        engine.dispose()
    if b.name == "postgresql":
        _admin(f'DROP DATABASE IF EXISTS "{b.url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, monkeypatch) -> Backend:
    b = make_backend(request.param, tmp_path / "home")
    monkeypatch.setenv("ASTROBIO_HOME", str(b.home))
    monkeypatch.setenv("ASTROBIO_REGISTRY_URL", b.url)
    yield b
    drop_backend(b)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A uvicorn server subprocess serving `astrobio serve` on 127.0.0.1."""

    proc: subprocess.Popen
    base: str
    log: Path

    @property
    def api(self) -> str:
        return self.base + "/api/v1"

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(b: Backend, roots: list[Path], *, max_body: int = 64 * 1024, log_name: str = "server.log",
                 extra_args: tuple[str, ...] = ()) -> Server:
    port = free_port()
    env = {**os.environ, "ASTROBIO_HOME": str(b.home), "ASTROBIO_REGISTRY_URL": b.url,
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    log = b.home / log_name
    args = [sys.executable, "-m", "astrobio", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--max-body-bytes", str(max_body), "--log-level", "info"]
    for r in roots:
        args += ["--source-root", str(r)]
    args += list(extra_args)
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(server.base + "/openapi.json", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop(kill=True)
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def wait_job(api: str, key: str, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{api}/jobs/{job_id}", headers={"X-API-Key": key}, timeout=10).json()
        if job["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.3)


def real_sources(root: Path) -> dict[str, Path]:
    """Real source files linked into a source root: exoplanet.eu catalogue (spright), the
    e_coli_core model (cobra), NCEP 500 hPa DJF heights (eofs), iJO1366 (cobra)."""
    from astrobio.datasets.sources import package_file

    root.mkdir(parents=True, exist_ok=True)
    files = {
        "catalogue": package_file("spright", "data/exoplanet_eu.csv"),
        "textbook": package_file("cobra", "data/textbook.xml.gz"),
        "hgt": package_file("eofs", "examples/example_data/hgt_djf.nc"),
        "ijo": package_file("cobra", "data/iJO1366.xml.gz"),
    }
    out = {}
    for k, src in files.items():
        dest = root / src.name
        if not dest.exists():
            dest.write_bytes(src.read_bytes())  # a copy: the source root holds real files, no links out
        out[k] = dest
    return out
