"""Fuzz the registry's REST API from outside, as a new user's security review would: a live
`astrobio serve` (real uvicorn, 127.0.0.1, free port) over a registry holding the default
dataset's catalogue tables (built by `astrobio.datasets.build_default`), with a write key and a
source root of real source files, and schemathesis (a schema-driven property-based fuzzer)
driven by the server's own OpenAPI schema, for a bounded time.

Fails (exit 1) on a server error, an undocumented status, a response that does not match the
schema, an accepted invalid request (schemathesis' checks), or a traceback in the server log.

    python scripts/api_fuzz.py --max-time 120 [--database-url postgresql+psycopg://...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from registry_fixtures import free_port, real_sources  # noqa: E402  (the test suite's real source files)

# every check schemathesis has, except those that assume what this API is not:
# positive_data_acceptance (a schema-valid source path need not exist on the server, so a 422 is
# right), use_after_free / ensure_resource_availability (no DELETE operations), and
# object_level_authorization (one tenant: every read key may read every dataset)
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,"
          "allow_header_conformance,ignored_auth")
# settings shared with the contract test (413 counts as rejecting an oversized invalid body)
CONFIG = Path(__file__).with_name("schemathesis.toml")


def prepare(home: Path, sources: Path, database_url: str | None) -> str:
    """Registry with the default dataset's catalogues, a training run recorded on one, and a
    write key (returned)."""
    os.environ["ASTROBIO_HOME"] = str(home)
    if database_url:
        os.environ["ASTROBIO_REGISTRY_URL"] = database_url
    from astrobio.datasets.default import build_default
    from astrobio.registry import open_registry
    from astrobio.registry.keys import create_key

    build_default(["catalogues"], progress=False)
    reg = open_registry()
    if not reg.datasets():
        raise SystemExit("the default dataset's catalogues did not register (is astrobio[serve] installed?)")
    real_sources(sources)
    return create_key(reg, "fuzz", "write")[0]


def start(home: Path, sources: Path, port: int, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "astrobio", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--source-root", str(sources), "--collect-workers", "1", "--log-level", "info"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def fuzz(base: str, key: str, max_time: int, out: Path, seed: int | None = None, workers: int = 2) -> int:
    cmd = [sys.executable, str(Path(__file__).with_name("schemathesis_cli.py")), "--config-file", str(CONFIG), "run", f"{base}/openapi.json", "--checks", CHECKS,
           "-H", f"X-API-Key: {key}", "--max-time", str(max_time), "--workers", str(workers),
           "--request-timeout", "30", "--report", "junit,ndjson", "--report-dir", str(out),
           "--suppress-health-check", "too_slow", "--output-sanitize", "true"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return subprocess.call(cmd, cwd=out)  # its example database stays with the reports


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-time", type=int, default=120, help="fuzzing budget in seconds")
    p.add_argument("--database-url", help="registry database (default: SQLite in a temporary home)")
    p.add_argument("--out", help="keep reports and the server log here")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="astrobio-fuzz-"))
    out = Path(args.out) if args.out else work / "report"
    out.mkdir(parents=True, exist_ok=True)
    key = prepare(work / "home", work / "sources", args.database_url)
    port = free_port()
    log = out / "server.log"
    proc = start(work / "home", work / "sources", port, log)
    t0 = time.monotonic()
    try:
        rc = fuzz(f"http://127.0.0.1:{port}", key, args.max_time, out, args.seed, args.workers)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    wall = time.monotonic() - t0
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    access = [x for x in lines if x.get("logger") == "astrobio.serve.access"]
    statuses: dict[str, int] = {}
    for x in access:
        statuses[str(x["status"])] = statuses.get(str(x["status"]), 0) + 1
    tracebacks = [x for x in lines if "traceback" in x]
    summary = {"fuzzer": "schemathesis", "seconds": round(wall, 1), "requests_served": len(access),
               "statuses": dict(sorted(statuses.items())), "server_tracebacks": len(tracebacks), "schemathesis_exit": rc}
    print(json.dumps(summary))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(work, ignore_errors=True)  # the data home (~600 MB); with --out the reports stay there
    return 1 if rc or tracebacks or any(s.startswith("5") for s in statuses) else 0


if __name__ == "__main__":
    raise SystemExit(main())
