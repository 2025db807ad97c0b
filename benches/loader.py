"""Loader throughput: astrobio's Rust core against its peers, on one store, in one process.

    python benches/loader.py [--quick] [--json results.json] [--samples N] [--rounds R]
                             [--store DIR] [--compression C] [--plot PNG] [--markdown MD]

Contenders (interleaved over several rounds, medians; each one's output is checked against the
reference first, so a fast wrong answer never wins):
  astrobio-1t / -2t     decode + verify + normalize + collate a batch, one native call
  zarr+numpy            zarr-python 3 (default codec pipeline) per sample + numpy finite check
                        and normalize + torch default_collate (the reference output)
  zarrs+numpy           the same through the `zarrs` Rust codec pipeline for zarr-python
  tensorstore+numpy     the same through tensorstore
  ... batched           zarr / zarrs / tensorstore reading the whole batch with ONE orthogonal
                        selection (index array), so they decode its chunks concurrently; then
                        the same numpy check + normalize (the peers at their best)
  decode-only (file)    read each chunk file + decompress it into the batch (numcodecs /
                        zstandard, one thread): the store's codec alone, no checks
  decode-only (memory)  decompress chunk bytes already in memory: the codec's own ceiling
  memcpy                copy the batch's output bytes once
  DataLoader rows       torch DataLoader, num_workers 0 and 2, over astrobio's batch dataset
                        and over a zarr+numpy map-style dataset with default_collate

The store is built by the benchmark itself from real ExoPlaSim GCM fields, regridded to
5 x 32 x 64 x 64 float32 per sample and tiled with small perturbations (benches/gcm_fields.py),
with the store's default codecs (or --compression). --quick is a smoke run for CI: a small
store, one round, all the equality checks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

import astrobio  # noqa: E402
from astrobio import _core  # noqa: E402

BATCH = 16
SHAPE = gcm_fields.SHAPE


def timed_rounds(runs: dict[str, Callable[[], int]], rounds: int, current: list, all_batches: list,
                 per_round: int) -> dict[str, list[tuple[float, int]]]:
    """Run every contender once per round, in turn (interleaved), recording (seconds, bytes out).
    Round r reads the next `per_round` batches of the store (wrapping), the same for everyone."""
    times: dict[str, list[tuple[float, int]]] = {k: [] for k in runs}
    for r in range(rounds):
        start = (r * per_round) % len(all_batches)
        current[:] = (all_batches + all_batches)[start:start + per_round]
        for name, fn in runs.items():
            t0 = time.perf_counter()
            nbytes = fn()
            times[name].append((time.perf_counter() - t0, nbytes))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return times


def summarize(times: dict[str, list[tuple[float, int]]], sample_bytes: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, rows in times.items():
        rates = [b / t for t, b in rows]
        med = statistics.median(rates)
        out[name] = {
            "gb_per_s": med / 1e9,
            "samples_per_s": med / sample_bytes,
            "rounds_gb_per_s": [r / 1e9 for r in rates],
        }
    return out


def ratios(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Speed of astrobio (1 and 2 threads) over each other contender; >1 means astrobio is faster."""
    out = {}
    for mine in ("astrobio-1t", "astrobio-2t"):
        for other, r in results.items():
            if other != mine and not other.startswith("astrobio-") and r.get("gb_per_s"):
                out[f"{mine} / {other}"] = results[mine]["gb_per_s"] / r["gb_per_s"]
    out["astrobio-2t / astrobio-1t"] = results["astrobio-2t"]["gb_per_s"] / results["astrobio-1t"]["gb_per_s"]
    name, fastest = fastest_peer(results)
    out[f"headline: astrobio-2t / fastest peer ({name})"] = results["astrobio-2t"]["gb_per_s"] / fastest
    return out


PEER_PREFIXES = ("zarr", "tensorstore")  # the libraries astrobio is compared with (not the bounds)


def fastest_peer(results: dict[str, dict[str, float]]) -> tuple[str, float]:
    """(name, GB/s) of the fastest peer library row, per-sample, batched or DataLoader."""
    peers_only = {k: r["gb_per_s"] for k, r in results.items() if k.startswith(PEER_PREFIXES) and r.get("gb_per_s")}
    name = max(peers_only, key=peers_only.__getitem__)
    return name, peers_only[name]


def print_table(results: dict[str, dict], ratio: dict[str, float], skipped: dict[str, str]) -> None:
    print(f"\n{'contender':<24} {'GB/s':>7} {'samples/s':>10}")
    for name, r in results.items():
        print(f"{name:<24} {r['gb_per_s']:>7.2f} {r['samples_per_s']:>10.1f}")
    for name, why in skipped.items():
        print(f"{name:<24} {'skipped':>7}  ({why})")
    print("\nratios (GB/s of astrobio over GB/s of the other; > 1: astrobio faster)")
    for k, v in ratio.items():
        print(f"  {k:<44} {v:6.2f}x")


def markdown(results: dict[str, dict], ratio: dict[str, float], skipped: dict[str, str], codecs: dict | None) -> str:
    lines = ["| contender | GB/s (median) | samples/s |", "| --- | ---: | ---: |"]
    lines += [f"| {k} | {r['gb_per_s']:.2f} | {r['samples_per_s']:.1f} |" for k, r in results.items()]
    lines += [f"| {k} | skipped | {why} |" for k, why in skipped.items()]
    lines += ["", "| ratio | value |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.2f}x |" for k, v in ratio.items()]
    if codecs:
        lines += ["", "| compression | ratio | decode alone GB/s | astrobio-1t GB/s | build s (incl. stats) |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {k} | {c['ratio']:.2f} | {c['decode_gb_per_s']:.2f} | {c['astrobio_1t_gb_per_s']:.2f} | "
                  f"{c['build_s_incl_stats']:.1f} |" for k, c in codecs.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small store, 1 round, all checks: a smoke run for CI")
    ap.add_argument("--samples", type=int, default=None, help="samples in the store (default 800, 2.1 GB; quick: 32)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; quick: 1)")
    ap.add_argument("--batches-per-round", type=int, default=25,
                    help="batches each contender reads per round (default 25 = 1 GB; rounds walk the store)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the tables as markdown here")
    ap.add_argument("--plot", type=Path, default=None, help="write a bar chart (PNG, matplotlib) here")
    ap.add_argument("--store", type=Path, default=None, help="build (if missing) and keep the store at this path")
    ap.add_argument("--compression", default=None, help="store compression (default: the writer's default)")
    ap.add_argument("--codecs", action="store_true", help="also compare the store compressions (sizes, decode speed)")
    ap.add_argument("--no-dataloader", action="store_true", help="skip the DataLoader rows")
    args = ap.parse_args(argv)
    n = args.samples or (32 if args.quick else 800)
    rounds = args.rounds or (1 if args.quick else 5)
    sample_bytes = int(np.prod(SHAPE)) * 4
    writer_kwargs = {"compression": args.compression} if args.compression else {}

    with tempfile.TemporaryDirectory(prefix="astrobio-bench-") as tmp:
        path = args.store or Path(tmp) / "bench.zarr"
        if not (path / "zarr.json").exists():
            t0 = time.perf_counter()
            gcm_fields.build_store(path, n, **writer_kwargs)
            print(f"built {n} samples ({n * sample_bytes / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        n = astrobio.open_store(path).n_samples
        rng = np.random.default_rng(0)
        order = rng.permutation(n)
        batches = [sorted(order[i:i + BATCH].tolist()) for i in range(0, n - BATCH + 1, BATCH)]
        per_round = min(args.batches_per_round, len(batches))
        current = list(batches[:per_round])
        runs, checks, skipped, closers = peers.contenders(path, current, workers=not args.no_dataloader)
        try:
            checked = peers.check_against_reference(checks)  # raises on any mismatch
            times = timed_rounds(runs, rounds, current, batches, per_round)
        finally:
            for close in closers:
                close()
        results = summarize(times, sample_bytes)
        ratio = ratios(results)
        print_table(results, ratio, skipped)
        store_bytes = sum(f.stat().st_size for f in (path / "cubes").rglob("*") if f.is_file())
        codec = json.loads((path / "cubes" / "zarr.json").read_text())["codecs"]
        codecs = None
        if args.codecs or args.quick:
            import codecs_compare

            codecs = codecs_compare.compare(Path(tmp), 16 if args.quick else 64, rounds=1 if args.quick else 3)
            print(f"\n{'compression':<12} {'ratio':>6} {'decode GB/s':>12} {'astrobio-1t GB/s':>17}")
            for k, c in codecs.items():
                print(f"{k:<12} {c['ratio']:>6.2f} {c['decode_gb_per_s']:>12.2f} {c['astrobio_1t_gb_per_s']:>17.2f}")
        meta = {
            "samples": n, "batch": BATCH, "rounds": rounds, "batches_per_round": per_round, "shape": list(SHAPE), "cpus": os.cpu_count(),
            "uncompressed_gb": n * sample_bytes / 1e9, "store_gb": store_bytes / 1e9, "codecs": codec,
            "machine": platform.platform(), "processor": platform.processor(),
            "load_average": os.getloadavg(), "checked_equal_to_reference": checked,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        doc = {"meta": meta, "results": results, "ratios": ratio, "skipped": skipped, "codec_comparison": codecs}
        if args.json:
            args.json.write_text(json.dumps(doc, indent=2))
        if args.markdown:
            args.markdown.write_text(markdown(results, ratio, skipped, codecs))
        if args.plot:
            import plot_loader

            plot_loader.plot(doc, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
