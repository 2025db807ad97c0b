"""Patch batches of an observation store: the Rust core against astropy `Cutout2D` + numpy
(cutting the same patches out of the ZTF science image held in memory, then normalizing) and
against zarr-python reading the same store's chunks + numpy normalization. One process,
interleaved rounds, the median per contender and ratios; every contender's batch is checked
against the core's first (a fast wrong answer never wins).

    python benches/patches.py [--store PATH] [--batch 64] [--rounds 30] [--threads 1]

Without --store it uses the default dataset's observations part (built on first use).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import zarr

from astrobio._optional import require
from astrobio.datasets import default_part
from astrobio.datasets.sources import package_file
from astrobio.ingest.observations import IMAGE_FILES
from astrobio.ingest._ztf_image import BAD_BITS
from astrobio.reader import CubeReader
from astrobio.stores.observation import open_observations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="core reader threads (0: every core; the peers use one)")
    a = ap.parse_args()
    fits = require("astropy.io.fits")
    nddata = require("astropy.nddata")
    store = open_observations(Path(a.store) if a.store else default_part("observations"))
    cols = store.columns
    image = np.flatnonzero((cols["product"] == "image").to_numpy())
    size = int(store.manifest["patch_size"])
    mean = np.asarray(store.manifest["normalization"]["mean"], np.float32)
    std = np.asarray(store.manifest["normalization"]["std"], np.float32)
    core = CubeReader(store.patches_path, threads=a.threads)
    zarr_cubes = zarr.open_array(store=str(store.patches_path / "cubes"), mode="r")
    with fits.open(package_file("ztfimg", IMAGE_FILES[0])) as h, fits.open(package_file("ztfimg", IMAGE_FILES[1])) as m:
        data = np.asarray(h[0].data, np.float32)
        data = np.where((np.asarray(m[0].data) & BAD_BITS) != 0, np.nan, data)
    xy = cols[["x", "y"]].to_numpy(float)
    rng = np.random.default_rng(0)

    def run_core(idx):
        return core.read(idx).cubes[:, 0, 0]

    def run_zarr(idx):
        raw = np.stack([zarr_cubes[int(i)] for i in idx])  # one chunk per sample: the same reads the core makes
        return ((raw - mean[None, :, None, None, None]) / std[None, :, None, None, None])[:, 0, 0]

    def run_cutout(idx):
        out = np.empty((len(idx), size, size), np.float32)
        for k, i in enumerate(idx):
            cut = nddata.Cutout2D(data, tuple(xy[i]), (size, size), mode="partial", fill_value=np.nan).data
            out[k] = (cut - mean[0]) / std[0]
        return out

    contenders = {"core": run_core, "zarr-python + numpy": run_zarr, "astropy Cutout2D + numpy": run_cutout}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(a.rounds):
        idx = np.sort(rng.choice(image, a.batch, replace=False))
        ref = None
        for name, fn in contenders.items():
            t = time.perf_counter()
            got = fn(idx)
            times[name].append(time.perf_counter() - t)
            if ref is None:
                ref = got
            elif r == 0:  # equal where the pixel is real (the store fills missing pixels, Cutout2D leaves NaN)
                valid = np.isfinite(got)
                np.testing.assert_allclose(got[valid], ref[valid], rtol=1e-5, atol=1e-4, err_msg=name)
    med = {k: statistics.median(v) for k, v in times.items()}
    fastest_peer = min(v for k, v in med.items() if k != "core")
    print(f"{a.batch} patches of {size}x{size} (6 channels in the core / zarr; the science channel for Cutout2D), "
          f"median of {a.rounds} interleaved rounds, outputs checked equal:")
    for k, v in med.items():
        print(f"  {k:28s} {v * 1e3:8.2f} ms   {a.batch / v:9.0f} patches/s   core is {v / med['core']:.1f}x faster")
    print(f"core vs the fastest peer: {fastest_peer / med['core']:.1f}x")


if __name__ == "__main__":
    main()
