"""The observation store's quality expectations (its part of the quality report): class balance
per split, label consistency, survey coverage, temporal distribution, coordinates, image
integrity, duplicates, and leakage by object and by sky region between splits."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import _sky
from .kinds import expectation

__all__ = ["observation_expectations"]

ARCSEC = 1.0 / 3600.0


def _balance(cols: pd.DataFrame) -> dict[str, Any]:
    out = {}
    for split, g in cols.groupby("split"):
        pos = int((g["label"] == 1).sum())
        out[str(split)] = {"positive": pos, "negative": int(len(g) - pos), "positive_fraction": pos / max(1, len(g))}
    ok = all(v["positive"] > 0 and v["negative"] > 0 for k, v in out.items() if k != "val") and "train" in out
    return expectation("expect_both_classes_in_each_split", ok, out, "train and test hold positives and negatives",
                       {"anomaly_types": {f"{k[0]} {k[1]}": int(v) for k, v in cols.groupby(["split", "anomaly_type"]).size().items()}})


def _conflicts(cols: pd.DataFrame) -> dict[str, Any]:
    """Same position (1 arcsec) in the same exposure (MJD) with different labels."""
    from scipy.spatial import cKDTree

    ra, dec = np.radians(cols["ra"].to_numpy(float)), np.radians(cols["dec"].to_numpy(float))
    xyz = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], 1)
    pairs = cKDTree(xyz).query_pairs(np.radians(ARCSEC), output_type="ndarray") if len(cols) > 1 else np.zeros((0, 2), int)
    lab, mjd = cols["label"].to_numpy(), cols["mjd"].to_numpy(float)
    bad = [(int(a), int(b)) for a, b in pairs if lab[a] != lab[b] and abs(mjd[a] - mjd[b]) < 1e-6]
    mixed = int((cols.groupby("object_id")["label"].nunique() > 1).sum())
    return expectation("expect_consistent_labels", not bad, len(bad), 0,
                       {"conflicting_pairs": [cols["patch_id"].iloc[list(p)].tolist() for p in bad[:5]],
                        "objects_with_real_and_bogus_detections": mixed})


def _coverage(cols: pd.DataFrame, request: Mapping[str, Any]) -> dict[str, Any]:
    got = cols.groupby(["survey", "product", "filter"]).size()
    have = set(cols["survey"])
    wanted = set(request.get("surveys") or have)
    return expectation("expect_survey_coverage", wanted <= have, {" ".join(map(str, k)): int(v) for k, v in got.items()},
                       sorted(wanted))


def _temporal(cols: pd.DataFrame, request: Mapping[str, Any]) -> dict[str, Any]:
    mjd = cols["mjd"].to_numpy(float)
    dates = cols["date"].astype(str)
    ok = bool(np.isfinite(mjd).all())
    if request.get("start"):
        ok &= bool((dates >= str(request["start"])[:10]).all())
    if request.get("end"):
        ok &= bool((dates.str[:10] <= str(request["end"])[:10]).all())
    years = dates.str[:4].value_counts().sort_index()
    return expectation("expect_dates_within_request", ok, {"first": dates.min(), "last": dates.max()},
                       {"start": request.get("start"), "end": request.get("end")}, {"per_year": years.to_dict()})


def _coordinates(cols: pd.DataFrame) -> dict[str, Any]:
    ra, dec = cols["ra"].to_numpy(float), cols["dec"].to_numpy(float)
    x, y = cols["x"].to_numpy(float), cols["y"].to_numpy(float)
    bad_sky = int((~((ra >= 0) & (ra < 360) & (np.abs(dec) <= 90))).sum())
    image = (cols["product"] == "image").to_numpy()
    bad_pix = int((~((x[image] >= 0) & (y[image] >= 0))).sum())
    return expectation("expect_valid_coordinates", bad_sky == 0 and bad_pix == 0,
                       {"ra_dec_out_of_range": bad_sky, "image_centres_outside_image": bad_pix}, 0,
                       {"wcs": "image patches positioned through the image's celestial WCS; alerts carry ra/dec"})


def _integrity(raw: np.ndarray, size: int) -> dict[str, Any]:
    c = raw.shape[1] // 2
    missing = {name: float(1.0 - raw[:, c + i].mean()) for i, name in enumerate(("science", "reference", "difference"))}
    finite = bool(np.isfinite(raw).all())
    sci = raw[:, 0][raw[:, c] > 0]
    saturated = float((sci > 5e4).mean()) if sci.size else 0.0
    shapes_ok = raw.shape[-2:] == (size, size)
    return expectation("expect_image_integrity", finite and shapes_ok, {"finite": finite, "shape": list(raw.shape[1:]),
                       "missing_fraction": missing, "saturated_fraction_science": saturated},
                       {"finite": True, "shape": [2 * c, 1, size, size] if raw.ndim == 5 else [2 * c, size, size]})


def _duplicates(cols: pd.DataFrame, raw: np.ndarray) -> dict[str, Any]:
    ids = int(cols["patch_id"].duplicated().sum())
    hashes = pd.Series([hashlib.sha256(p.tobytes()).hexdigest() for p in raw])
    pixels = int(hashes.duplicated().sum())
    return expectation("expect_no_duplicate_samples", ids == 0 and pixels == 0,
                       {"duplicate_patch_ids": ids, "duplicate_pixels": pixels}, 0)


def _leakage(cols: pd.DataFrame, size: int) -> list[dict[str, Any]]:
    per_object = cols.groupby("object_id")["split"].nunique()
    objects = per_object[per_object > 1].index.tolist()
    cells = _sky.cells(cols["ra"].to_numpy(float), cols["dec"].to_numpy(float))
    per_cell = pd.Series(cols["split"].to_numpy()).groupby(cells).nunique()
    shared_cells = int((per_cell > 1).sum())
    _, _, clash = _sky.assign(cols["ra"], cols["dec"], cols["object_id"], size * 1.012 / 3600)
    # an alert's own cell may differ from its object's first position: only overlap and objects count
    return [expectation("expect_no_object_leakage", not objects, len(objects), 0, {"objects": objects[:10]}),
            expectation("expect_no_sky_region_leakage", not clash.any(),
                        {"overlapping_patches_across_splits": int(clash.sum()), "cells_with_several_splits": shared_cells},
                        0, {"rule": _sky.RULE})]


def observation_expectations(cols: pd.DataFrame, raw: np.ndarray, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every observation expectation; `raw` the unnormalized patches [N, 6, H, W]."""
    request = manifest.get("request") or {}
    size = int(manifest["patch_size"])
    return [_balance(cols), _conflicts(cols), _coverage(cols, request), _temporal(cols, request), _coordinates(cols),
            _integrity(raw, size), _duplicates(cols, raw), *_leakage(cols, size)]
