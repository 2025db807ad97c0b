"""Patch batches of an observation store, the Rust core against its peers, every contender
producing the same batch: [B, 6, H, W] float32 (science, reference, difference normalized per
channel, missing pixels filled with the patch's channel median, then the three validity masks),
checked equal to the core's on every value (a fast wrong answer never wins).

Peers:
- **zarr-python + numpy**: the same store's chunks (zarr v3, sharded) read by zarr-python, then
  the normalization in numpy.
- **astropy + numpy from the sources**: what a script without a store does. Image patches are
  `Cutout2D` cutouts of the ZTF science image, held decoded in memory (its cheapest form), alert
  patches are the alerts' gzipped FITS stamps, held in memory, decoded by astropy and cropped;
  then the same fill, masks and normalization in numpy.

Two kinds of batch: image patches only (the peer's best case: slicing an array in RAM), and
patches drawn from the whole store (its real mix of alerts and image patches). One process,
interleaved rounds, the median per contender and the ratios against the fastest peer.

    python benches/patches.py [--store PATH] [--batch 64] [--rounds 30] [--threads 1]

Without --store it uses the default dataset's observations part (built on first use).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zarr

from astrobio._optional import require
from astrobio.datasets import default_part
from astrobio.datasets.sources import package_file
from astrobio.ingest._patches import CHANNELS, crop_center
from astrobio.ingest._ztf_alerts import STAMPS, _stamp
from astrobio.ingest._ztf_image import BAD_BITS
from astrobio.ingest.observations import ALERT_FILES, IMAGE_FILES
from astrobio.reader import CubeReader
from astrobio.stores.observation import ObservationStore, open_observations


def _sources() -> tuple[np.ndarray, dict[str, dict[str, bytes]]]:
    """The science image (bad pixels NaN) and every alert's three stamps, in memory."""
    fits, pq = require("astropy.io.fits"), require("pyarrow.parquet")
    with fits.open(package_file("ztfimg", IMAGE_FILES[0])) as h, fits.open(package_file("ztfimg", IMAGE_FILES[1])) as m:
        data = np.asarray(h[0].data, np.float32)
        image = np.where((np.asarray(m[0].data) & BAD_BITS) != 0, np.nan, data).astype(np.float32)
    alerts: dict[str, dict[str, bytes]] = {}
    for f in ALERT_FILES:
        for row in pq.read_table(package_file("fink_science", f), columns=["candidate", *STAMPS.values()]).to_pylist():
            alerts.setdefault(f"ztf-alert-{row['candidate']['candid']}", {c: row[STAMPS[c]] for c in CHANNELS})
    return image, alerts


def _finish(pixels: np.ndarray, store: ObservationStore, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """[3, H, W] raw pixels (NaN missing) -> the store's [6, H, W] normalized sample."""
    valid = np.isfinite(pixels)
    fill = np.asarray(store.manifest["normalization"]["mean"], np.float32)[:len(CHANNELS)]
    med = np.array([np.median(p[v]) if v.any() else f for p, v, f in zip(pixels, valid, fill)], np.float32)
    values = np.where(valid, pixels, med[:, None, None])
    return (np.concatenate([values, valid.astype(np.float32)]) - mean[:, None, None]) / std[:, None, None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="core reader threads (0: every core; the peers use one)")
    a = ap.parse_args()
    nddata = require("astropy.nddata")
    store = open_observations(Path(a.store) if a.store else default_part("observations"))
    cols = store.columns
    size = int(store.manifest["patch_size"])
    core = CubeReader(store.patches_path, threads=a.threads)
    norm = core.normalization()  # the numbers the core normalizes with
    mean, std = np.asarray(norm.mean, np.float32).reshape(-1), np.asarray(norm.scale, np.float32).reshape(-1)
    zarr_cubes = zarr.open_array(store=str(store.patches_path / "cubes"), mode="r")
    image, alerts = _sources()
    product, patch_id = cols["product"].to_numpy(), cols["patch_id"].to_numpy()
    xy = cols[["x", "y"]].to_numpy(float)

    def run_core(idx: np.ndarray) -> np.ndarray:
        return core.read(idx).cubes[:, :, 0]

    def run_zarr(idx: np.ndarray) -> np.ndarray:
        raw = np.stack([zarr_cubes[int(i)] for i in idx])[:, :, 0]  # one inner chunk per sample, as the core reads
        return (raw - mean[None, :, None, None]) / std[None, :, None, None]

    def run_sources(idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), 2 * len(CHANNELS), size, size), np.float32)
        for k, i in enumerate(idx):
            if product[i] == "image":
                pixels = np.full((len(CHANNELS), size, size), np.nan, np.float32)
                pixels[0] = nddata.Cutout2D(image, tuple(xy[i]), (size, size), mode="partial", fill_value=np.nan).data
            else:
                stamps = alerts[patch_id[i]]
                pixels = crop_center(np.stack([_stamp(stamps[c], patch_id[i]) for c in CHANNELS]), size)
            out[k] = _finish(pixels, store, mean, std)
        return out

    def run_science_only(idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), size, size), np.float32)
        for k, i in enumerate(idx):
            out[k] = (nddata.Cutout2D(image, tuple(xy[i]), (size, size), mode="partial", fill_value=np.nan).data - mean[0]) / std[0]
        return out

    contenders: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "core": run_core, "zarr-python + numpy": run_zarr, "astropy + numpy from the sources": run_sources}
    # less work than the batch (one channel, no fill, no masks), so neither checked nor a peer:
    # printed so the cost of the fill and masks is visible
    partial = {"Cutout2D science channel only": run_science_only}
    pools = {"image patches": np.flatnonzero(product == "image"), "all patches (alerts and image)": np.arange(len(cols))}
    rng = np.random.default_rng(0)
    print(f"{a.batch} patches of 6x{size}x{size} per batch, core threads {a.threads}, median of {a.rounds} "
          f"interleaved rounds, every output checked equal to the core's:")
    for label, pool in pools.items():
        runs = {**contenders, **(partial if label == "image patches" else {})}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for r in range(a.rounds):
            idx = np.sort(rng.choice(pool, min(a.batch, len(pool)), replace=False))
            ref = None
            for name, fn in runs.items():
                t = time.perf_counter()
                got = fn(idx)
                times[name].append(time.perf_counter() - t)
                if ref is None:
                    ref = got
                elif r == 0 and name in contenders:
                    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4, err_msg=f"{name} on {label}")
        med = {k: statistics.median(v) for k, v in times.items()}
        fastest_peer = min(v for k, v in med.items() if k in contenders and k != "core")
        print(f"{label}:")
        for k, v in med.items():
            note = "  (less work: not a peer)" if k in partial else ""
            print(f"  {k:34s} {v * 1e3:8.2f} ms  {a.batch / v:9.0f} patches/s  core is {v / med['core']:.1f}x faster{note}")
        print(f"  core vs the fastest peer: {fastest_peer / med['core']:.1f}x")


if __name__ == "__main__":
    main()
