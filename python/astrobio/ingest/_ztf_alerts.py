"""ZTF alerts (the Avro alert schema as fink writes it to parquet) -> patches.

Each alert carries three 63x63 cutouts (science, reference = "template", difference) as gzipped
FITS, its position (ra/dec), time (jd), band (fid) and ZTF's own real/bogus scores (rb, drb).
The label of an alert patch comes from **drb** (ZTF's deep real/bogus classifier, Duev et al.
2019): real (1) when drb >= `real_threshold`, bogus (0) when drb < `bogus_threshold`; alerts in
between are ambiguous and dropped. Weakness: drb is itself a CNN's score on these cutouts, not
a human vetting, so a detector trained on it learns to agree with ZTF's classifier, errors
included; and bogus alerts are rare in a broker's stream (33 of 586 here).

Faults: a truncated or unreadable parquet file or stamp is refused (IntegrityError naming the
file and alert); a stamp that is not square (cut at the CCD edge, so the source is off-centre),
an alert without finite coordinates, or a stamp with no finite pixel is dropped with its reason.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IntegrityError, first_line
from .._optional import require
from ._patches import CHANNELS, ZTF_FILTERS, ZTF_INSTRUMENT, Patches, concat, crop_center

__all__ = ["STAMPS", "read_alerts", "REAL_THRESHOLD", "BOGUS_THRESHOLD"]

log = logging.getLogger(__name__)

#: alert field of each channel's cutout
STAMPS = {"science": "cutoutScience", "reference": "cutoutTemplate", "difference": "cutoutDifference"}
REAL_THRESHOLD = 0.9
BOGUS_THRESHOLD = 0.5
#: a known solar-system object within this distance (arcsec, the alert's ssdistnr) makes the
#: alert a solar-system detection
SSO_RADIUS_ARCSEC = 5.0
_JD_MJD = 2400000.5


def _stamp(blob: Any, where: str) -> np.ndarray:
    """One cutout as float32 (NaN kept); IntegrityError when it is not a readable FITS image."""
    fits = require("astropy.io.fits")
    data = blob.get("stampData") if isinstance(blob, dict) else None
    if not data:
        raise IntegrityError(f"{where}: no stamp data")
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        with warnings.catch_warnings():
            # ZTF writes the SIMPLE card of its stamps slightly off the standard; astropy reads them
            # correctly and would warn once per stamp
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul = fits.open(io.BytesIO(raw), memmap=False)
        with hdul:
            image = hdul[0].data
            if image is None or image.ndim != 2:
                raise ValueError(f"primary HDU holds {None if image is None else image.shape}, not an image")
            return np.asarray(image, dtype=np.float32)
    except (OSError, ValueError, EOFError, TypeError) as e:
        raise IntegrityError(f"{where}: not a readable FITS stamp ({first_line(e)})") from None


def _anomaly(cand: dict[str, Any], extra: dict[str, Any]) -> str:
    roid = extra.get("roid")
    ssd = cand.get("ssdistnr")
    if roid == 3 or (ssd is not None and 0 <= float(ssd) < SSO_RADIUS_ARCSEC):
        return "solar_system"
    cls = extra.get("cdsxmatch")
    return str(cls) if cls else "unclassified"


def _read_table(path: Path) -> list[dict[str, Any]]:
    pq = require("pyarrow.parquet")
    wanted = ["objectId", "candidate", *STAMPS.values(), "cdsxmatch", "roid"]
    try:
        schema = pq.read_schema(path)
        table = pq.read_table(path, columns=[c for c in wanted if c in schema.names])
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for truncated or foreign files
        raise IntegrityError(f"alert file is not a readable parquet file ({first_line(e)})", path=str(path)) from None
    missing = [c for c in wanted[:5] if c not in table.column_names]
    if missing:
        raise IntegrityError(f"alert file lacks the ZTF alert fields {missing}", path=str(path))
    return table.to_pylist()


def _one_file(path: Path, label_name: str, size: int, real: float, bogus: float) -> Patches:
    time = require("astropy.time")
    rows = _read_table(path)
    dropped: Counter = Counter()
    pixels: list[np.ndarray] = []
    cols: dict[str, list[Any]] = {k: [] for k in (
        "patch_id", "object_id", "survey", "product", "instrument", "filter", "mjd", "date", "ra", "dec",
        "source_file", "x", "y", "label", "confidence", "validation", "anomaly_type")}
    for row in rows:
        cand = row["candidate"] or {}
        where = f"{label_name}: alert {cand.get('candid')} of {row['objectId']}"
        stamps = [_stamp(row[STAMPS[c]], f"{where}, {c} stamp") for c in CHANNELS]
        ra, dec, jd, drb = (cand.get(k) for k in ("ra", "dec", "jd", "drb"))
        if any(v is None or not math.isfinite(float(v)) for v in (ra, dec, jd)) or not (-90 <= dec <= 90 and 0 <= ra < 360):
            dropped["alert without valid coordinates or time"] += 1
            continue
        if any(s.shape[0] != s.shape[1] for s in stamps):
            dropped["stamp not square (cut at the CCD edge: the source is off-centre)"] += 1
            continue
        if drb is None or not math.isfinite(float(drb)) or bogus <= drb < real:
            dropped[f"ambiguous real/bogus score ({bogus} <= drb < {real})"] += 1
            continue
        cube = crop_center(np.stack(stamps), size)
        if not np.isfinite(cube).reshape(len(CHANNELS), -1).any(axis=1).all():
            dropped["a stamp with no finite pixel"] += 1
            continue
        positive = drb >= real
        mjd = float(jd) - _JD_MJD
        pixels.append(cube)
        cols["patch_id"].append(f"ztf-alert-{cand.get('candid')}")
        cols["object_id"].append(str(row["objectId"]))
        cols["survey"].append("ZTF")
        cols["product"].append("alert")
        cols["instrument"].append(ZTF_INSTRUMENT)
        cols["filter"].append(ZTF_FILTERS.get(int(cand.get("fid") or 0), f"fid{cand.get('fid')}"))
        cols["mjd"].append(mjd)
        cols["date"].append(time.Time(mjd, format="mjd", scale="utc").isot)
        cols["ra"].append(float(ra))
        cols["dec"].append(float(dec))
        cols["source_file"].append(label_name)
        cols["x"].append(float(cand.get("xpos") or math.nan))
        cols["y"].append(float(cand.get("ypos") or math.nan))
        cols["label"].append(int(positive))
        cols["confidence"].append(float(drb if positive else 1.0 - drb))
        cols["validation"].append("survey_score")
        cols["anomaly_type"].append(_anomaly(cand, row))
    out = np.stack(pixels).astype(np.float32) if pixels else np.zeros((0, len(CHANNELS), size, size), np.float32)
    return Patches(out, cols, dropped)


def read_alerts(files: Sequence[tuple[Path, str]], size: int = 63, real: float = REAL_THRESHOLD,
                bogus: float = BOGUS_THRESHOLD) -> Patches:
    """Patches of the alerts in `files` ((path, name recorded as the patch's source file)):
    the central `size` x `size` pixels of each cutout triplet, labelled by drb."""
    parts = [_one_file(Path(p), name, size, real, bogus) for p, name in files]
    out = concat(parts, size)
    # ZTF re-issues some alerts (same object and exposure, a new candid): keep the first
    seen: set[tuple[str, float]] = set()
    keep = []
    for i, key in enumerate(zip(out.columns["object_id"], out.columns["mjd"])):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    if len(keep) < len(out):
        n = len(out)
        out = out.take(np.asarray(keep))  # take() keeps the drop counts
        out.dropped["duplicate alert (same object and exposure, re-issued with a new candid)"] += n - len(keep)
    if out.dropped:
        log.info("alerts dropped: %s", dict(out.dropped))
    return out
