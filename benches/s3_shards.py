"""Sharded vs one-object-per-sample stores over a local S3 server, for small samples.

    python benches/s3_shards.py [--server seaweedfs|moto] [--samples N] [--shard S] [--rounds R] [--quick] [--json out.json]

The store holds the shipped pack's real ExoPlaSim samples on their own grid ([5, 10, 32, 64]
float32, 410 KB raw: the default dataset's sample shape), tiled to N samples, written twice:
one chunk object per sample, and `shard_samples=S` (S consecutive samples per object). Each
round reads one epoch in batches of 32 with astrobio's s3:// reader, for each of:

  plain, shuffled            one GET per sample (the default store, the default sampler)
  sharded, shuffled          one range GET per sample (plus each shard's index once)
  sharded, shard-shuffled    BatchIndexSampler(shuffle_block=S): a batch reads one or two shards,
                             their inner chunks fetched in one range GET per shard
  plain, shard-shuffled      the same batches from the plain store (separates the sampler's part)
  local plain / sharded      the two stores on local disk, shuffled, for scale
  zarr+obstore, tensorstore  the peers of benches/s3_loader.py on the sharded store, shard-shuffled
                             (both read zarr v3 shards with range requests), numpy check + normalize

Rounds interleave the contenders; medians are reported. Before timing, every batch of the sharded
store is checked equal, bit for bit, to the plain store's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gcm_fields  # noqa: E402
import peers  # noqa: E402
from s3_loader import BUCKET, s3_peers, serving  # noqa: E402

from astrobio import _core  # noqa: E402
from astrobio.data import BatchIndexSampler  # noqa: E402
from astrobio.stores import _remote  # noqa: E402

BATCH = 32


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=["seaweedfs", "moto"], default="seaweedfs")
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--shard", type=int, default=16, help="samples per shard (16: about 5 MB per shard object)")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    n = args.samples or (128 if args.quick else 1024)
    rounds = args.rounds or (1 if args.quick else 5)
    with serving(args.server) as endpoint:
        with tempfile.TemporaryDirectory() as tmp:
            base = gcm_fields.pack_fields(min(n, 132))
            paths = {"plain": Path(tmp) / "plain.zarr", "sharded": Path(tmp) / "sharded.zarr"}
            gcm_fields.build_store(paths["plain"], n, base)
            gcm_fields.build_store(paths["sharded"], n, base, shard_samples=args.shard)
            urls = {k: f"s3://{BUCKET}/bench/{k}.zarr" for k in paths}
            sizes = {}
            for k, p in paths.items():
                _remote.upload(p, urls[k])
                files = [f for f in (p / "cubes" / "c").rglob("*") if f.is_file()]
                sizes[k] = (len(files), sum(f.stat().st_size for f in files))
            per_object = {k: s / c for k, (c, s) in sizes.items()}
            print(f"{args.server}: {n} samples of {base.shape[1:]}; plain {sizes['plain'][0]} objects of "
                  f"{per_object['plain'] / 1e3:.0f} KB, sharded {sizes['sharded'][0]} objects of "
                  f"{per_object['sharded'] / 1e6:.2f} MB", file=sys.stderr)

            def epoch(block: int, r: int) -> list[list[int]]:
                s = BatchIndexSampler(np.arange(n), BATCH, shuffle=True, seed=0, shuffle_block=block)
                s.set_epoch(r)
                return s.epoch_batches()

            readers = {k: _core.BatchReader(u, "per_variable", 2) for k, u in urls.items()}
            local = {k: _core.BatchReader(str(p), "per_variable", 2) for k, p in paths.items()}
            for batch in epoch(args.shard, 0) + epoch(1, 0)[:4]:  # the same values, bit for bit
                want = local["plain"].read_batch(batch)
                for got in (readers["sharded"].read_batch(batch), local["sharded"].read_batch(batch)):
                    if not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
                        raise SystemExit(f"sharded batch {batch[:4]}... differs from the plain store's")
            contenders: dict[str, tuple[Callable[[list[int]], np.ndarray], int]] = {
                "s3 plain, shuffled": (readers["plain"].read_batch, 1),
                "s3 sharded, shuffled": (readers["sharded"].read_batch, 1),
                "s3 sharded, shard-shuffled": (readers["sharded"].read_batch, args.shard),
                "s3 plain, shard-shuffled": (readers["plain"].read_batch, args.shard),
                "local plain, shuffled": (local["plain"].read_batch, 1),
                "local sharded, shuffled": (local["sharded"].read_batch, 1),
            }
            peer_runs, skipped = s3_peers(endpoint, "bench/sharded.zarr", peers.Normalizer(paths["plain"]))
            check = epoch(args.shard, 0)[0]
            for name, read in peer_runs.items():  # to the reference's rounding
                np.testing.assert_allclose(read(check), local["plain"].read_batch(check), rtol=1e-6, atol=1e-6, err_msg=name)
                contenders[f"{name} sharded, shard-shuffled"] = (read, args.shard)
            for name, why in skipped.items():
                print(f"skipped {name}: {why}", file=sys.stderr)
            sample_bytes = int(np.prod(base.shape[1:])) * 4
            results: dict[str, list[float]] = {k: [] for k in contenders}
            for r in range(1, rounds + 1):  # round 0 was the check (indexes cached, connections warm)
                for name, (read, block) in contenders.items():
                    batches = epoch(block, r)
                    t0 = time.perf_counter()
                    for b in batches:
                        read(b)
                    results[name].append(n * sample_bytes / (time.perf_counter() - t0) / 1e9)
            med = {k: statistics.median(v) for k, v in results.items()}
    base_rate = med["s3 plain, shuffled"]
    print(f"\n{'contender':<44} {'GB/s':>6} {'vs s3 plain':>11}")
    for k, v in med.items():
        print(f"{k:<44} {v:>6.2f} {v / base_rate:>10.2f}x")
    if args.json:
        doc = {"server": args.server, "samples": n, "sample_shape": list(base.shape[1:]), "shard_samples": args.shard,
               "batch": BATCH, "rounds": rounds, "objects": {k: c for k, (c, _) in sizes.items()},
               "bytes_per_object": per_object, "gb_per_s": results, "median_gb_per_s": med,
               "load_average": os.getloadavg(), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
