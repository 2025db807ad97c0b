"""Loader throughput: astrobio's Rust core against baselines, on one store, in one process.

    python benches/loader.py [--quick] [--json results.json] [--samples N]

Contenders (interleaved, several rounds, medians; each is checked against the reference first
so a fast wrong answer never wins):
  astrobio-1t / -2t   decode + verify + normalize + collate, one native call per batch
  zarr+numpy          zarr-python 3 read per sample + numpy normalize + torch default_collate
  zstd-only           zstandard decompression of the same chunk bytes (a lower bound)
  memcpy              copying the batch's output bytes (the hardware ceiling)

The store: 5 x 32 x 64 x 64 float32 per sample (2.6 MB), the store's default codecs. The
fields are smooth large-scale patterns plus small-scale noise so they compress like climate
fields rather than like white noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import astrobio
from astrobio import _core

SHAPE = (5, 32, 64, 64)
BATCH = 16


def bench_fields(n: int, seed: int = 0) -> np.ndarray:
    """Smooth, climate-like fields: zonal structure, level profile, waves, small noise."""
    v, lv, h, w = SHAPE
    rng = np.random.default_rng(seed)
    lat = np.linspace(-np.pi / 2, np.pi / 2, h)[:, None]
    lon = np.linspace(0, 2 * np.pi, w, endpoint=False)[None, :]
    lev = np.linspace(0, 1, lv)[:, None, None]
    out = np.empty((n, v, lv, h, w), np.float32)
    for s in range(n):
        phase = rng.uniform(0, 2 * np.pi, v)
        for k in range(v):
            base = 250 * (k == 0) + 30 * np.cos(lat) ** 2 * (1 - lev) + 5 * np.sin(3 * lon + phase[k]) * np.cos(lat)
            out[s, k] = base + rng.normal(0, 0.05, (lv, h, w))
    return out


def build_store(path: Path, n: int) -> None:
    variables = [astrobio.Variable(name, "1") for name in ("ta", "ua", "va", "hus", "wap")]
    with astrobio.StoreWriter(path, variables=variables, sample_shape=SHAPE, name="bench") as w:
        block = 32
        for i in range(0, n, block):
            w.add_run(f"run-{i // block:04d}", bench_fields(min(block, n - i), seed=i))
        w.commit()


def contenders(path: Path, n: int):
    import torch
    import zarr
    import zstandard
    from torch.utils.data import default_collate

    manifest = astrobio.open_store(path).manifest["normalization"]["cubes"]["per_variable"]
    mean = np.asarray(manifest["mean"], np.float32)[:, None, None, None]
    inv = (1.0 / np.asarray(manifest["std"])).astype(np.float32)[:, None, None, None]
    one = _core.BatchReader(str(path), "per_variable", 1)
    two = _core.BatchReader(str(path), "per_variable", 2)
    arr = zarr.open_array(store=str(path / "cubes"), mode="r")
    dctx = zstandard.ZstdDecompressor()

    def chunk_bytes(i: int) -> bytes:
        return (path / "cubes" / "c" / str(i) / "0" / "0" / "0" / "0").read_bytes()

    def zarr_numpy(idx):
        samples = []
        for i in idx:
            x = arr[i]
            if not np.isfinite(x).all():
                raise ValueError("non-finite")
            samples.append(torch.from_numpy((x - mean) * inv))
        return default_collate(samples).numpy()

    def zstd_only(idx):
        for i in idx:
            dctx.decompress(chunk_bytes(i)[:-4])  # strip the crc32c trailer
        return None

    src = np.ones((len(range(BATCH)), *SHAPE), np.float32)
    dst = np.empty_like(src)

    def memcpy(idx):
        np.copyto(dst, src)
        return None

    return {
        "astrobio-1t": lambda idx: one.read_batch(idx),
        "astrobio-2t": lambda idx: two.read_batch(idx),
        "zarr+numpy": zarr_numpy,
        "zstd-only": zstd_only,
        "memcpy": memcpy,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small store, 2 rounds: a smoke run for CI")
    ap.add_argument("--samples", type=int, default=None, help="samples in the store (default 800, ~2.1 GB; quick: 48)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--store", type=Path, default=None, help="reuse/keep the store at this path")
    args = ap.parse_args(argv)
    n = args.samples or (48 if args.quick else 800)
    rounds = args.rounds or (2 if args.quick else 5)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or Path(tmp) / "bench.zarr"
        if not (path / "zarr.json").exists():
            t0 = time.perf_counter()
            build_store(path, n)
            print(f"built {n} samples ({n * np.prod(SHAPE) * 4 / 1e9:.2f} GB) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        n = astrobio.open_store(path).n_samples
        runs = contenders(path, n)
        rng = np.random.default_rng(0)
        batches = [rng.choice(n, BATCH, replace=False).tolist() for _ in range(max(1, n // BATCH))]
        ref = runs["zarr+numpy"](batches[0])
        for name in ("astrobio-1t", "astrobio-2t"):
            np.testing.assert_allclose(runs[name](batches[0]), ref, rtol=1e-5, atol=1e-5, err_msg=name)
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(rounds):
            for name, fn in runs.items():  # interleaved: every contender sees the same machine state
                t0 = time.perf_counter()
                for b in batches:
                    fn(b)
                times[name].append(time.perf_counter() - t0)
        out_bytes = len(batches) * BATCH * int(np.prod(SHAPE)) * 4
        results = {
            name: {
                "median_s": statistics.median(t),
                "gb_per_s": out_bytes / statistics.median(t) / 1e9,
                "samples_per_s": len(batches) * BATCH / statistics.median(t),
            }
            for name, t in times.items()
        }
        base = results["astrobio-1t"]["median_s"]
        print(f"{'contender':<14} {'GB/s':>8} {'samples/s':>10} {'time vs astrobio-1t':>20}")
        for name, r in results.items():
            print(f"{name:<14} {r['gb_per_s']:>8.2f} {r['samples_per_s']:>10.0f} {r['median_s'] / base:>19.2f}x")
        meta = {"samples": n, "batch": BATCH, "rounds": rounds, "shape": SHAPE, "cpus": os.cpu_count()}
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
