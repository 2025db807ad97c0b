"""Benchmark fixture: real ExoPlaSim GCM fields, regridded to the benchmark shape and tiled.

The shipped climate pack (11 planets x 12 monthly means of [ta, ua, va, hus, wap] on 10 sigma
levels x 32 lat x 64 lon, stored as float16) is linearly interpolated to 32 levels x 64 lat x
64 lon (float32, so the mantissas are as full as a GCM's float32 output) and tiled with small
deterministic perturbations (a longitude roll and a scale within 0.1%): the chunks differ from
each other but compress like climate fields, not like white noise (which would not compress)
nor like the float16 source (which would compress too well).

This is a benchmark fixture, not training data: nothing here reaches a model.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import astrobio
from astrobio.datasets.climate import _PACK_CODEC, VARIABLES, pack_path

SHAPE = (5, 32, 64, 64)


@functools.lru_cache(maxsize=4)
def pack_fields(count: int = 132) -> np.ndarray:
    """The first `count` (at most 132) samples of the shipped pack on its own grid: float32
    [count, 5, 10, 32, 64] (the default dataset's sample shape, 410 KB each)."""
    npz, js = pack_path()
    doc = json.loads(js.read_text())
    with np.load(npz) as z:
        raw = np.frombuffer(_PACK_CODEC.decode(z["cubes_blosc"].tobytes()), np.float16).reshape(doc["shape"])
    return raw.reshape(-1, *raw.shape[2:])[:count].astype(np.float32)


@functools.lru_cache(maxsize=4)
def base_fields(count: int = 132) -> np.ndarray:
    """The first `count` (at most 132) pack samples regridded to SHAPE: float32 [count, 5, 32, 64, 64]."""
    from scipy.ndimage import zoom

    raw = pack_fields(count)
    _, lv, h, w = SHAPE
    factors = (1, lv / raw.shape[2], h / raw.shape[3], w / raw.shape[4])
    # order=1: linear interpolation stays inside the source's range (hus stays >= 0).
    return np.stack([zoom(s, factors, order=1, mode="nearest", grid_mode=False) for s in raw]).astype(np.float32)


def tiled(n: int, base: np.ndarray, block: int = 32) -> Iterator[np.ndarray]:
    """`n` samples in blocks of `block`: tile k of the base rolled by 8k longitudes, scaled by 1 + 1e-4 k."""
    lo = np.array([v.valid_range[0] for v in VARIABLES], np.float32)[:, None, None, None]
    hi = np.array([v.valid_range[1] for v in VARIABLES], np.float32)[:, None, None, None]
    for start in range(0, n, block):
        out = np.empty((min(block, n - start), *base.shape[1:]), np.float32)
        for j in range(len(out)):
            i = start + j
            k = i // len(base)
            x = np.roll(base[i % len(base)], 8 * k, axis=-1) * np.float32(1 + 1e-4 * k)
            out[j] = np.clip(x, lo, hi)
        yield out


def build_store(path: Path, n: int, base: np.ndarray | None = None, **writer_kwargs) -> None:
    """Write `n` tiled samples of `base` (default: the regridded pack, SHAPE) as a store at
    `path` (runs of 32 samples)."""
    base = base_fields(min(n, 132)) if base is None else base
    with astrobio.StoreWriter(path, variables=VARIABLES, sample_shape=base.shape[1:], name="bench (ExoPlaSim fields)",
                              **writer_kwargs) as w:
        for b, cubes in enumerate(tiled(n, base)):
            w.add_run(f"tile-{b:04d}", cubes)
        w.commit()
