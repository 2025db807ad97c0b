"""Bounded local load test of the registry API: GET /datasets and GET .../quality (JSON) with
a few concurrent httpx clients for a fixed time, against a real uvicorn server on 127.0.0.1,
on SQLite and (when $ASTROBIO_TEST_POSTGRES_URL is set) PostgreSQL. Reports requests/s, p50,
p99 and errors; loopback only.

    python benches/registry_load.py --seconds 30 --clients 4 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import build_fixture  # noqa: E402  (the test suite's fixture store writer)
from registry_fixtures import drop_backend, make_backend, start_server  # noqa: E402


def hammer(url: str, key: str, seconds: float, clients: int) -> dict[str, float]:
    """`clients` threads, each with its own keep-alive connection, GET `url` until time is up."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker() -> None:
        mine, bad = [], 0
        with httpx.Client(headers={"X-API-Key": key}, timeout=30) as c:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                try:
                    ok = c.get(url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - t0)
                bad += not ok
        with lock:
            lat.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    lat.sort()
    pct = lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
    return {"requests": len(lat), "rps": round(len(lat) / wall, 1), "p50_ms": round(pct(0.50), 2),
            "p99_ms": round(pct(0.99), 2), "errors": errors[0]}


def run_backend(kind: str, seconds: float, clients: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        b = make_backend(kind, Path(tmp) / "home")
        os.environ["ASTROBIO_HOME"] = str(b.home)
        try:
            reg = b.registry()
            for i in range(3):  # a few datasets and versions, so the list has something to join
                fx = build_fixture(Path(tmp) / f"d{i}.zarr", seed=i)
                for _ in range(2):
                    reg.register(fx.path, f"dataset-{i}")
            key = b.key("read", "load")
            server = start_server(b, [], log_name="load.log")
            try:
                out = {}
                for name, path in (("GET /datasets", "/datasets"), ("GET quality", "/datasets/dataset-0/versions/2/quality")):
                    hammer(server.api + path, key, 2.0, clients)  # warm-up, not counted
                    out[name] = hammer(server.api + path, key, seconds, clients)
                    print(f"{kind:<10} {name:<15} {json.dumps(out[name])}", flush=True)
                return out
            finally:
                server.stop()
        finally:
            drop_backend(b)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("ASTROBIO_TEST_POSTGRES_URL") else [])
    results = {k: run_backend(k, args.seconds, args.clients) for k in backends}
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": args.seconds, "clients": args.clients, "results": results}, indent=2))
    errors = sum(r["errors"] for per in results.values() for r in per.values())
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
