"""A ZTF science image and its pipeline mask -> positive and negative patches.

sep (Source Extractor as a library) detects at 5 sigma above a background mesh, with every mask
bit that marks a bad pixel masked (tracks, responsivity, noise, ghosts, spikes, saturation,
dead, NaN, halos); the two source bits stay visible. Its detections confirm positives and keep
negatives away from sources.

Labels: the **positives** are ZTF's own pipeline detections that a 5-sigma threshold misses:
each connected blob of mask bit 1 ("contains SExtractor detection"), centred on its
flux-weighted centre, with no sep detection within 2 px (about 4,800 of the 12,634 blobs;
validation "pipeline", or "catalogue" when a VSX variable star lies within `MATCH_ARCSEC`;
confidence 0.5, 1 with VSX). The bright ones are left out on purpose: any threshold finds them
(a first version with every blob gave the thresholding baseline an AUC of 0.99), so the
detector is measured on what thresholding cannot do. **Negatives** are made automatically in the same image:
patch centres at least `CLEAR_PX` pixels from every pipeline source pixel (bits 1 and 11),
every sep detection and every VSX star, on good pixels, chosen with a fixed seed. Weakness: the
labels are one pipeline's thresholded extraction in one image (one field, night and band): a
source below its threshold can sit in a negative patch, and a noise blob it flagged is a
positive.

Patches are `Cutout2D` cutouts (mode "partial"): at the image edge the part outside is NaN,
carried as masked pixels, and the detection stays at the centre. The image has no reference or
difference: those channels are NaN (masked) for image patches.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import IntegrityError, first_line
from .._optional import require
from ._patches import CHANNELS, ZTF_FILTERS, ZTF_INSTRUMENT, Patches, file_identity

__all__ = ["BAD_BITS", "SOURCE_BITS", "read_image", "detect", "read_vsx"]

log = logging.getLogger(__name__)

#: ZTF mask bits (the mask header's BITnn cards): 1 SExtractor source, 11 PSF-fit source
SOURCE_BITS = (1 << 1) | (1 << 11)
#: every bit that marks a pixel as bad: 0 track, 2-3 responsivity, 4 noisy, 5-6 ghosts,
#: 7 spike, 8 saturated, 9 dead, 10 NaN, 12 halo
BAD_BITS = sum(1 << b for b in (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12))
DETECT_SIGMA = 5.0
MATCH_ARCSEC = 2.0
#: negatives: minimum distance (pixels, about 8 seeing FWHM) from any source
CLEAR_PX = 10.0


def _open(path: Path, what: str) -> tuple[np.ndarray, Any]:
    fits = require("astropy.io.fits")
    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = hdul[0]
            data = hdu.data
            if data is None or data.ndim != 2:
                raise ValueError(f"primary HDU holds {None if data is None else data.shape}, not an image")
            return np.array(data, dtype=np.float32 if what == "science" else np.int32), hdu.header.copy()
    except (OSError, ValueError, EOFError, TypeError) as e:
        raise IntegrityError(f"{what} image is not a readable FITS image ({first_line(e)})", path=str(path)) from None


def detect(data: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """sep detections (structured array with x, y, flux, ...) at `DETECT_SIGMA` over the
    background, `bad` pixels masked."""
    sep = require("sep")
    sep.set_extract_pixstack(5_000_000)
    filled = np.where(bad, 0.0, data).astype(np.float32)
    bkg = sep.Background(filled, mask=bad)
    return sep.extract(filled - bkg.back(), DETECT_SIGMA, err=bkg.globalrms, mask=bad)


def read_vsx(path: Path, ra: tuple[float, float], dec: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """VSX stars inside the RA/Dec box (degrees): ra, dec, variability type."""
    pq, pc = require("pyarrow.parquet"), require("pyarrow.compute")
    try:
        table = pq.read_table(path, columns=["RAJ2000", "DEJ2000", "VType"])
    except Exception as e:
        raise IntegrityError(f"VSX catalogue is not a readable parquet file ({first_line(e)})", path=str(path)) from None
    r, d = table["RAJ2000"], table["DEJ2000"]
    keep = pc.and_(pc.and_(pc.greater_equal(r, ra[0]), pc.less_equal(r, ra[1])),
                   pc.and_(pc.greater_equal(d, dec[0]), pc.less_equal(d, dec[1])))
    sub = table.filter(keep)
    return (np.asarray(sub["RAJ2000"], float), np.asarray(sub["DEJ2000"], float),
            [str(t).strip() for t in sub["VType"].to_pylist()])


def _wcs(header: Any, path: Path) -> Any:
    wcs_mod = require("astropy.wcs")
    try:
        wcs = wcs_mod.WCS(header)
    except Exception as e:
        raise IntegrityError(f"science image has an unreadable WCS ({first_line(e)})", path=str(path)) from None
    if not wcs.has_celestial:
        raise IntegrityError("science image has no celestial WCS, so its patches have no sky position", path=str(path))
    return wcs.celestial


def _negatives(shape: tuple[int, int], clear: np.ndarray, bad: np.ndarray, n: int, size: int, seed: int) -> np.ndarray:
    """`n` centres (x, y) where `clear` (at least CLEAR_PX from every source pixel, detection
    and catalogued star), on good pixels, whole patches inside the image, at least half a patch
    apart (no two negatives share pixels at their centres)."""
    half = size // 2 + 1
    grid_y, grid_x = np.mgrid[half:shape[0] - half:half, half:shape[1] - half:half]
    ok = clear[grid_y, grid_x] & ~bad[grid_y, grid_x]
    cand = np.stack([grid_x[ok], grid_y[ok]], axis=1)
    rng = np.random.default_rng(seed)  # real-data-ok: which real background positions
    pick = rng.permutation(len(cand))[:n]
    return cand[np.sort(pick)].astype(float)


@dataclass(frozen=True)
class _Field:
    """What one image gives before any request option: its pixels (bad ones NaN), detections,
    the pipeline's source blobs and their VSX matches, and where negatives may go."""

    masked: np.ndarray
    bad: np.ndarray
    clear: np.ndarray
    header: Any
    wcs: Any
    obs_mjd: float
    n_blobs: int
    n_detections: int
    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    sep_dist: np.ndarray
    vsx_of: dict[int, str]


def _field(sci: Path, msk: Path, vsx: Path) -> _Field:
    """The image's `_Field`, kept for the last image read (keyed by path, size and mtime): the
    REST collect's pre-check and the collect itself then detect once."""
    return _cached_field(file_identity(sci), file_identity(msk), file_identity(vsx))


@functools.lru_cache(maxsize=1)
def _cached_field(sci_id: tuple[str, int, int], msk_id: tuple[str, int, int], vsx_id: tuple[str, int, int]) -> _Field:
    sci, msk, vsx = Path(sci_id[0]), Path(msk_id[0]), Path(vsx_id[0])
    data, header = _open(sci, "science")
    mask, _ = _open(msk, "mask")
    if mask.shape != data.shape:
        raise IntegrityError(f"mask is {mask.shape}, the science image {data.shape}", path=str(msk))
    wcs = _wcs(header, sci)
    obs_mjd = header.get("OBSMJD")
    if obs_mjd is None or not math.isfinite(float(obs_mjd)):
        raise IntegrityError("science image has no OBSMJD (observation time)", path=str(sci))
    bad = ((mask & BAD_BITS) != 0) | ~np.isfinite(data)
    objs = detect(data, bad)
    # positives: the pipeline's own source blobs (mask bit 1), flux-weighted centres
    blobs, n_blobs = ndimage.label((mask & 2) != 0)
    centres_yx = np.asarray(ndimage.center_of_mass(np.clip(np.nan_to_num(data), 0, None) + 1e-6, blobs,
                                                   np.arange(1, n_blobs + 1)), float).reshape(-1, 2)
    x, y = centres_yx[:, 1], centres_yx[:, 0]
    ra, dec = wcs.pixel_to_world_values(x, y)
    sep_dist, _ = cKDTree(np.stack([objs["x"], objs["y"]], 1)).query(np.stack([x, y], 1)) if len(objs) else (np.full(len(x), np.inf), None)
    corners = wcs.pixel_to_world_values([0, data.shape[1], 0, data.shape[1]], [0, 0, data.shape[0], data.shape[0]])
    v_ra, v_dec, v_type = read_vsx(vsx, (float(np.min(corners[0])), float(np.max(corners[0]))),
                                   (float(np.min(corners[1])), float(np.max(corners[1]))))
    vx, vy = wcs.world_to_pixel_values(v_ra, v_dec) if len(v_ra) else (np.zeros(0), np.zeros(0))
    inside = (vx >= 0) & (vx < data.shape[1]) & (vy >= 0) & (vy < data.shape[0])
    vx, vy, v_type = vx[inside], vy[inside], [t for t, k in zip(v_type, inside) if k]
    scale = float(header.get("PIXSCALE", 1.012))
    vsx_of: dict[int, str] = {}
    if len(vx) and len(x):
        dist, j = cKDTree(np.stack([vx, vy], 1)).query(np.stack([x, y], 1), distance_upper_bound=MATCH_ARCSEC / scale)
        vsx_of = {int(i): v_type[int(j[i])] for i in np.flatnonzero(np.isfinite(dist))}
    blocked = (mask & SOURCE_BITS) != 0
    for px, py in [*zip(np.rint(objs["x"]).astype(int), np.rint(objs["y"]).astype(int)),
                   *zip(np.rint(vx).astype(int), np.rint(vy).astype(int))]:
        blocked[min(max(py, 0), data.shape[0] - 1), min(max(px, 0), data.shape[1] - 1)] = True
    clear = ndimage.distance_transform_edt(~blocked) >= CLEAR_PX
    masked = np.where(bad, np.nan, data).astype(np.float32)
    arrays = [masked, bad, clear, x, y, np.asarray(ra, float), np.asarray(dec, float), np.asarray(sep_dist, float)]
    for a in arrays:
        a.flags.writeable = False  # shared by every read of this image
    return _Field(masked, bad, clear, header, wcs, float(obs_mjd), int(n_blobs), len(objs), *arrays[3:], vsx_of)


def read_image(sci: Path, msk: Path, vsx: Path, names: tuple[str, str], size: int = 63, negatives_per_positive: int = 1,
               max_positives: int | None = None, seed: int = 0, pixels: bool = True) -> Patches:
    """Positives at validated sep detections and `negatives_per_positive` background patches
    per positive, all from the image `sci` with its mask `msk`; `names` are recorded as the
    patches' source files (science, mask). `pixels=False` gives the metadata only (patches of
    0x0 pixels), for checking what a request selects."""
    nddata, time = require("astropy.nddata"), require("astropy.time")
    f = _field(sci, msk, vsx)
    shape = f.masked.shape
    dropped: Counter = Counter()
    vsx_of = f.vsx_of
    # the task: the pipeline's sources that a 5-sigma threshold (sep) misses
    faint = np.flatnonzero(~(f.sep_dist <= 2.0))
    order = faint[np.random.default_rng(seed).permutation(len(faint))]  # real-data-ok: which real sources
    if max_positives is not None:
        order = np.concatenate([[i for i in order if i in vsx_of], [i for i in order if i not in vsx_of]]).astype(int)[:max_positives]
    order = np.sort(order).astype(int)
    neg = _negatives(shape, f.clear, f.bad, negatives_per_positive * len(order), size, seed)
    if len(neg) < negatives_per_positive * len(order):
        dropped["negative not placed (too few source-free positions)"] += negatives_per_positive * len(order) - len(neg)
    n_ra, n_dec = f.wcs.pixel_to_world_values(neg[:, 0], neg[:, 1]) if len(neg) else (np.zeros(0), np.zeros(0))
    pos_xy = np.stack([f.x[order], f.y[order]], 1)
    centres = np.concatenate([pos_xy, neg]) if len(neg) else pos_xy
    side = size if pixels else 0
    cutouts = np.full((len(centres), len(CHANNELS), side, side), np.nan, np.float32)
    for k, (cx, cy) in enumerate(centres if pixels else ()):
        cut = nddata.Cutout2D(f.masked, (cx, cy), (size, size), mode="partial", fill_value=np.nan, copy=True)
        cutouts[k, 0] = cut.data
    n_pos = len(order)
    label = [1] * n_pos + [0] * len(neg)
    all_ra = np.concatenate([f.ra[order], np.asarray(n_ra)])
    all_dec = np.concatenate([f.dec[order], np.asarray(n_dec)])
    # confidence: 1 when the catalogue agrees, else 0.5 (the pipeline alone)
    core = [0.5 for _ in order]
    date = time.Time(f.obs_mjd, format="mjd", scale="utc").isot
    band = ZTF_FILTERS.get(int(f.header.get("FILTERID", 0)), str(f.header.get("FILTER", "")))
    stem = Path(names[0]).name.removesuffix("_sciimg.fits")
    jname = [f"J{a:09.5f}{d:+09.5f}" for a, d in zip(all_ra, all_dec)]
    cols: dict[str, list[Any]] = {
        "patch_id": [f"{stem}-{'pos' if l else 'neg'}-{cx:.1f}-{cy:.1f}" for l, (cx, cy) in zip(label, centres)],
        "object_id": [("ztf-image-" if l else "background-") + j for l, j in zip(label, jname)],
        "survey": ["ZTF"] * len(label),
        "product": ["image"] * len(label),
        "instrument": [ZTF_INSTRUMENT] * len(label),
        "filter": [band] * len(label),
        "mjd": [f.obs_mjd] * len(label),
        "date": [date] * len(label),
        "ra": all_ra.tolist(),
        "dec": all_dec.tolist(),
        "source_file": [names[0]] * len(label),
        "x": centres[:, 0].tolist(),
        "y": centres[:, 1].tolist(),
        "label": label,
        "confidence": [1.0 if i in vsx_of else c for i, c in zip(order, core)] + [1.0] * len(neg),
        "validation": ["catalogue" if i in vsx_of else "pipeline" for i in order] + ["pipeline"] * len(neg),
        "anomaly_type": [vsx_of.get(i, "unclassified") for i in order] + ["background"] * len(neg),
    }
    log.info("%s: %d pipeline sources, %d sep detections, %d positives (%d VSX), %d negatives", stem, f.n_blobs,
             f.n_detections, n_pos, len(vsx_of), len(neg))
    return Patches(cutouts, cols, dropped)
