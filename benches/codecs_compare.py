"""Store compressions compared on the benchmark's real GCM fields: size, write speed, the
codec's decode speed alone, and astrobio's end-to-end batch read (decode + verify + normalize
+ collate, one thread). Used by benches/loader.py (--codecs); the default is chosen from this."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

import gcm_fields
import peers

from astrobio import _core
from astrobio.stores.cube_writer import COMPRESSIONS

BATCH = 16


def compare(tmp: Path, n: int, rounds: int = 3) -> dict[str, dict[str, float]]:
    """Build one `n`-sample store per compression under `tmp` and measure each (interleaved)."""
    raw_bytes = n * int(np.prod(gcm_fields.SHAPE)) * 4
    stores, out = {}, {}
    for name in COMPRESSIONS:
        path = tmp / f"codec-{name}.zarr"
        t0 = time.perf_counter()
        gcm_fields.build_store(path, n, compression=name)
        write_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in (path / "cubes" / "c").rglob("*") if f.is_file())
        stores[name] = path
        out[name] = {"ratio": raw_bytes / size, "store_mb": size / 1e6, "build_s_incl_stats": write_s}
        print(f"codec {name}: ratio {raw_bytes / size:.2f}", file=sys.stderr)
    batches = [list(range(i, i + BATCH)) for i in range(0, n - BATCH + 1, BATCH)]
    work = {}
    for name, path in stores.items():
        decode = peers.chunk_decoder(path)
        chunks = [peers.chunk_path(path, i).read_bytes() for i in range(n)]
        buf = np.empty((BATCH, int(np.prod(gcm_fields.SHAPE))), np.float32)
        reader = _core.BatchReader(str(path), "per_variable", 1)
        outb = np.empty((BATCH, *gcm_fields.SHAPE), np.float32)

        def decode_all(chunks=chunks, decode=decode, buf=buf) -> None:
            for b in batches:
                for slot, i in enumerate(b):
                    decode(chunks[i], buf[slot])

        def read_all(reader=reader, outb=outb) -> None:
            for b in batches:
                reader.read_batch(b, outb)

        work[name] = {"decode_gb_per_s": decode_all, "astrobio_1t_gb_per_s": read_all}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, fns in work.items():
            for key, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times.setdefault((name, key), []).append(time.perf_counter() - t0)
    done = len(batches) * BATCH * int(np.prod(gcm_fields.SHAPE)) * 4
    for (name, key), ts in times.items():
        out[name][key] = done / statistics.median(ts) / 1e9
    return out
