"""GET throughput against object size on a local S3 server: the measurement behind the sharding
rule (docs/object-storage.md#sharding). Small objects pay the per-request cost; past some size
the server's bandwidth is the limit and packing samples into shards gains nothing.

    python benches/s3_object_size.py [--server moto|seaweedfs] [--mb 64] [--rounds 3] [--json out.json]

Objects of each size (random bytes: incompressible, as compressed chunks are) are uploaded, then
all fetched with 32 requests in flight through the core's S3 client (`_core.object_get`), in
interleaved rounds; medians of MB/s and requests/s per size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from s3_loader import BUCKET, CREDS, start_server  # noqa: E402

from astrobio import _core  # noqa: E402

SIZES_KB = (16, 64, 256, 1024, 4096)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=["moto", "seaweedfs"], default="moto")
    ap.add_argument("--mb", type=int, default=64, help="bytes fetched per size and round, MB")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import boto3

    server_dir = tempfile.TemporaryDirectory()
    proc, endpoint = start_server(args.server, server_dir.name)
    os.environ.update({**CREDS, "AWS_ENDPOINT_URL": endpoint})
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"], region_name=CREDS["AWS_REGION"])
    url = f"s3://{BUCKET}/sizes"
    rng = np.random.default_rng(0)  # real-data-ok: incompressible payload of a transport benchmark
    keys: dict[int, list[str]] = {}
    results: dict[int, list[tuple[float, float]]] = {}
    pool = ThreadPoolExecutor(32)
    try:
        for kb in SIZES_KB:
            n = max(8, args.mb * 1024 // kb)
            body = rng.bytes(kb * 1024)
            keys[kb] = [f"{kb}k/{i}" for i in range(n)]
            list(pool.map(lambda k: client.put_object(Bucket=BUCKET, Key=f"sizes/{k}", Body=body), keys[kb]))
        for r in range(args.rounds):
            for kb in SIZES_KB:
                t0 = time.perf_counter()
                got = sum(len(b) for b in pool.map(lambda k: _core.object_get(url, k), keys[kb]))
                dt = time.perf_counter() - t0
                results.setdefault(kb, []).append((got / dt / 1e6, len(keys[kb]) / dt))
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
    finally:
        proc.kill()
        proc.wait()
        server_dir.cleanup()
    table = {kb: {"mb_per_s": statistics.median(x[0] for x in v), "gets_per_s": statistics.median(x[1] for x in v)}
             for kb, v in results.items()}
    top = max(r["mb_per_s"] for r in table.values())
    print(f"\nserver: {args.server}\n{'object':>8} {'MB/s':>8} {'GETs/s':>8} {'of best':>8}")
    for kb, r in table.items():
        print(f"{kb:>6}KB {r['mb_per_s']:8.0f} {r['gets_per_s']:8.0f} {r['mb_per_s'] / top:8.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"server": args.server, "mb": args.mb, "rounds": args.rounds,
                                               "results": {str(k): v for k, v in table.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
