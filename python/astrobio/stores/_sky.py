"""The split rule of observation patches, fixed before any training: by sky region, and so by
object.

The sky is cut into HEALPix cells (nside `NSIDE`, nested order: about 7 arcmin across, some
ten 32-pixel patches wide; a ZTF quadrant image spans about 60 of them, so every split gets
part of it). Each cell belongs to one split by
a hash of its number (`FRACTIONS`, in percent), so the rule needs no data and never changes with
what was collected. Every patch of one object goes where the object's first position falls (its
alerts cannot straddle a boundary). Two patches of different splits whose footprints overlap
(near a cell boundary) are both dropped, so no pixel of the sky is seen by two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .._optional import require

__all__ = ["NSIDE", "FRACTIONS", "RULE", "cells", "split_of_cell", "assign"]

NSIDE = 512
FRACTIONS = {"train": 60, "val": 20, "test": 20}
RULE = (f"HEALPix nside {NSIDE} (nested) cells, each in one split by sha256 of its number "
        f"(train/val/test {FRACTIONS['train']}/{FRACTIONS['val']}/{FRACTIONS['test']} %); an object's patches "
        "follow its first position; two patches of different splits whose footprints overlap are both dropped")


def cells(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """HEALPix cell numbers of positions (degrees)."""
    hp = require("astropy_healpix")
    units = require("astropy.units")
    return np.asarray(hp.HEALPix(nside=NSIDE, order="nested").lonlat_to_healpix(
        np.asarray(ra, float) * units.deg, np.asarray(dec, float) * units.deg), dtype=np.int64)


def split_of_cell(cell: int) -> str:
    """The split a sky cell belongs to (a pure function of the cell number)."""
    h = int.from_bytes(hashlib.sha256(f"astrobio-sky-nside{NSIDE}-{int(cell)}".encode()).digest()[:8], "big") % 100
    return "train" if h < FRACTIONS["train"] else "val" if h < FRACTIONS["train"] + FRACTIONS["val"] else "test"


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)


def assign(ra: Sequence[float], dec: Sequence[float], objects: Sequence[str], width_deg: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(split of each patch, its run cell, whether it overlaps a patch of another split) for
    square patches `width_deg` across."""
    from scipy.spatial import cKDTree

    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    first: dict[str, int] = {}
    for i, o in enumerate(objects):
        first.setdefault(o, i)
    home = np.array([first[o] for o in objects], dtype=np.int64)
    cell = cells(ra[home], dec[home])
    split = [split_of_cell(c) for c in cell]
    clash = np.zeros(len(ra), bool)
    if len(ra) > 1:  # squares overlap only when their centres are closer than a diagonal
        pairs = cKDTree(_unit(ra, dec)).query_pairs(2 * np.sin(np.radians(width_deg * np.sqrt(2)) / 2), output_type="ndarray")
        if len(pairs):
            a, b = pairs[:, 0], pairs[:, 1]
            dra = np.abs((ra[a] - ra[b] + 180) % 360 - 180) * np.cos(np.radians((dec[a] + dec[b]) / 2))
            overlap = (dra < width_deg) & (np.abs(dec[a] - dec[b]) < width_deg)
            other = np.array([split[i] != split[j] for i, j in zip(a, b)], bool) & overlap
            clash[a[other]] = True
            clash[b[other]] = True
    return split, cell, clash
