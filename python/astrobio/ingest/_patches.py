"""Observation patches in memory: pixels [N, 3, H, W] (science, reference, difference; NaN where
a pixel is missing or absent) and one metadata column per field, built by the survey readers
(`_ztf_alerts`, `_ztf_image`) and handed to the observation store writer.

Records that cannot become a patch are dropped with one reason each, counted in `dropped` (and
recorded in the store's provenance), never silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["CHANNELS", "COLUMNS", "NUMERIC", "Patches", "ZTF_FILTERS", "ZTF_INSTRUMENT", "crop_center", "concat", "file_identity"]

#: The image channels of every patch (a channel a product lacks is all-NaN, so masked).
CHANNELS = ("science", "reference", "difference")
#: Metadata columns: name -> (dtype, description). Strings are "" when absent.
COLUMNS: dict[str, tuple[str, str]] = {
    "patch_id": ("string", "unique id of the patch (alert candid, or image + pixel position)"),
    "object_id": ("string", "astronomical object (ZTF objectId; image detections: a J-name from the position)"),
    "survey": ("string", "survey (ZTF)"),
    "product": ("string", "survey product the patch comes from: 'alert' (stamp triplet) or 'image' (science image)"),
    "instrument": ("string", "camera and telescope"),
    "filter": ("string", "photometric band"),
    "mjd": ("float64", "observation time, modified Julian date (UTC)"),
    "date": ("string", "observation time, ISO 8601 (UTC)"),
    "ra": ("float64", "right ascension of the patch centre, degrees (ICRS)"),
    "dec": ("float64", "declination of the patch centre, degrees (ICRS)"),
    "source_file": ("string", "file of the source package the pixels come from"),
    "x": ("float64", "pixel column of the detection in its survey image (0-based)"),
    "y": ("float64", "pixel row of the detection in its survey image (0-based)"),
    "label": ("int64", "1: a real detection at the centre (positive); 0: none (negative)"),
    "confidence": ("float64", "probability the label is right, from the label source (see validation)"),
    "validation": ("string", "what validated the label: survey_score (ZTF drb), pipeline (mask), catalogue (VSX)"),
    "anomaly_type": ("string", "class of the object: SIMBAD class, VSX type, solar_system, background, unclassified"),
}
NUMERIC = tuple(k for k, (t, _) in COLUMNS.items() if t != "string")

ZTF_INSTRUMENT = "ZTF camera, Palomar 48-inch Samuel Oschin telescope"
#: ZTF's filter ids (the alert schema's `fid`)
ZTF_FILTERS = {1: "g", 2: "r", 3: "i"}


@dataclass
class Patches:
    """Patches and their metadata columns (every name of `COLUMNS`, one value per patch)."""

    pixels: np.ndarray
    columns: dict[str, list[Any]]
    dropped: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        missing = set(COLUMNS) - set(self.columns)
        if missing:
            raise ConfigError(f"patch columns lack {sorted(missing)}")
        n = len(self.pixels)
        if self.pixels.ndim != 4 or self.pixels.shape[1] != len(CHANNELS):
            raise ConfigError(f"patches must be [N, {len(CHANNELS)}, H, W], got {self.pixels.shape}")
        bad = [k for k, v in self.columns.items() if len(v) != n]
        if bad:
            raise ConfigError(f"columns {bad} do not have one value per patch ({n})")

    def __len__(self) -> int:
        return len(self.pixels)

    def take(self, idx: np.ndarray) -> "Patches":
        """The patches at `idx` (in that order), the drop counts kept."""
        idx = np.asarray(idx, dtype=np.int64)
        return Patches(self.pixels[idx], {k: [v[i] for i in idx] for k, v in self.columns.items()}, Counter(self.dropped))


def empty(size: int) -> Patches:
    return Patches(np.zeros((0, len(CHANNELS), size, size), np.float32), {k: [] for k in COLUMNS})


def concat(parts: list[Patches], size: int) -> Patches:
    """All patches of `parts`, one after another; drop counts summed."""
    if not parts:
        return empty(size)
    dropped: Counter = Counter()
    for p in parts:
        dropped.update(p.dropped)
    pixels = np.concatenate([p.pixels for p in parts]) if parts else np.zeros((0, len(CHANNELS), size, size), np.float32)
    return Patches(pixels, {k: [x for p in parts for x in p.columns[k]] for k in COLUMNS}, dropped)


def crop_center(stamp: np.ndarray, size: int) -> np.ndarray:
    """The central `size` x `size` pixels of a square stamp (odd stamps: the centre pixel stays
    the centre)."""
    h, w = stamp.shape[-2:]
    if size > min(h, w):
        raise ConfigError(f"patch_size {size} is larger than the {h}x{w} stamps")
    top, left = (h - size) // 2, (w - size) // 2
    return stamp[..., top:top + size, left:left + size]


def file_identity(path: Path) -> tuple[str, int, int]:
    """(path, mtime in ns, size): the key under which what a source file gave is cached, so an
    edited or replaced file is read again."""
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size
