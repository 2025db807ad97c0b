"""Bounded local load test of the registry API: GET /datasets and GET .../quality (JSON) with
a few concurrent httpx clients for a fixed time, against a real uvicorn server on 127.0.0.1,
on SQLite and (when $ASTROBIO_TEST_POSTGRES_URL is set) PostgreSQL. Reports requests/s, p50,
p99 and errors; loopback only.

With `--collects N`, a third phase runs N collects of one dataset (a real metabolic model,
submitted at once from N threads) beside the reads, and checks what concurrency must not
break: zero errors (every collect 202 and succeeded, every read 200), version numbers 1..N
unique and consecutive, every version `ready` with an intact store (digest checked), nothing
`collecting`, no hidden temporary folder left. Any breach exits 1.

    python benches/registry_load.py --seconds 30 --clients 4 --collects 12 [--json out.json]
    python benches/registry_load.py --seconds 3 --clients 2 --collects 4 --require-postgresql   # CI smoke
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
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
from registry_fixtures import drop_backend, make_backend, real_sources, start_server, wait_job  # noqa: E402


def hammer(url: str, key: str, seconds: float, clients: int, until: threading.Event | None = None) -> dict[str, float]:
    """`clients` threads, each with its own keep-alive connection, GET `url` until time is up
    (or, with `until`, until that event is set)."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker() -> None:
        mine, bad = [], 0
        with httpx.Client(headers={"X-API-Key": key}, timeout=30) as c:
            while (not until.is_set()) if until is not None else time.monotonic() < end:
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


def collect_beside_reads(server, b, sources: Path, n: int, seconds: float, clients: int) -> dict[str, object]:
    """N concurrent collects of one dataset while `clients` readers hammer GET /datasets."""
    write = b.key("write", "collector")
    read = b.key("read", "reader")
    body = {"format": "metabolic", "dataset": "load-collect", "models": {"e_coli_core": "textbook.xml.gz"}}
    reads: dict[str, float] = {}
    done = threading.Event()  # reads go on for as long as the collects run
    reader = threading.Thread(target=lambda: reads.update(hammer(server.api + "/datasets", read, seconds, clients, until=done)))
    t0 = time.monotonic()
    reader.start()

    def one(_: int) -> dict:
        with httpx.Client(headers={"X-API-Key": write}, timeout=60) as c:
            r = c.post(server.api + "/datasets/collect", json=body)
        if r.status_code != 202:
            return {"state": f"HTTP {r.status_code}", "ref": None}
        return {**wait_job(server.api, write, r.json()["job_id"], timeout=600), "ref": r.json()["ref"]}

    with cf.ThreadPoolExecutor(n) as pool:
        jobs = list(pool.map(one, range(n)))
    done.set()
    reader.join()
    wall = time.monotonic() - t0
    reg = b.registry()
    versions = reg.dataset("load-collect")["versions"]
    numbers = sorted(v["version"] for v in versions)
    problems = [f"job {j.get('ref')}: {j['state']} {j.get('error', '')}" for j in jobs if j["state"] != "succeeded"]
    if numbers != list(range(1, n + 1)):
        problems.append(f"version numbers {numbers}, expected 1..{n}")
    for v in versions:
        if v["status"] != "ready":
            problems.append(f"{v['ref']} is {v['status']}")
        else:
            try:
                reg.load(v["ref"])  # store present and its digest the registered one
            except Exception as e:  # noqa: BLE001  (a bench reports every failure, whatever raised it)
                problems.append(f"{v['ref']} does not load: {e}")
    stores = b.home / "registry" / "stores" / "load-collect"
    hidden = [p.name for p in stores.iterdir() if p.name.startswith(".")] if stores.is_dir() else []
    if hidden:
        problems.append(f"temporary folders left: {hidden}")
    if reads.get("errors"):
        problems.append(f"{reads['errors']} read errors")
    return {"collects": n, "wall_s": round(wall, 1), "collects_per_s": round(n / wall, 2), "versions": numbers,
            "reads": reads, "errors": len(problems), "problems": problems}


def run_backend(kind: str, seconds: float, clients: int, collects: int = 0) -> dict[str, dict[str, object]]:
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
            sources = Path(tmp) / "sources"
            real_sources(sources)
            server = start_server(b, [sources], log_name="load.log", extra_args=("--collect-workers", "2"))
            try:
                out: dict[str, dict[str, object]] = {}
                for name, path in (("GET /datasets", "/datasets"), ("GET quality", "/datasets/dataset-0/versions/2/quality")):
                    hammer(server.api + path, key, 2.0, clients)  # warm-up, not counted
                    out[name] = hammer(server.api + path, key, seconds, clients)
                    print(f"{kind:<10} {name:<15} {json.dumps(out[name])}", flush=True)
                if collects:
                    out["collects beside reads"] = collect_beside_reads(server, b, sources, collects, seconds, clients)
                    print(f"{kind:<10} {'collects+reads':<15} {json.dumps(out['collects beside reads'])}", flush=True)
                return out
            finally:
                server.stop()
        finally:
            drop_backend(b)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--collects", type=int, default=0, help="concurrent collects beside reads (third phase)")
    p.add_argument("--require-postgresql", action="store_true", help="fail unless $ASTROBIO_TEST_POSTGRES_URL is set")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    if args.require_postgresql and not os.environ.get("ASTROBIO_TEST_POSTGRES_URL"):
        p.error("--require-postgresql: set ASTROBIO_TEST_POSTGRES_URL (eval \"$(scripts/pg-test-cluster.sh start)\")")
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("ASTROBIO_TEST_POSTGRES_URL") else [])
    results = {k: run_backend(k, args.seconds, args.clients, args.collects) for k in backends}
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": args.seconds, "clients": args.clients, "results": results}, indent=2))
    errors = sum(int(r["errors"]) for per in results.values() for r in per.values())  # type: ignore[call-overload]
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
