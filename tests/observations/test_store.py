"""The observation store from real ZTF data: columns, explicit masks, splits without leakage,
the Rust core's normalized batches, verification, filters and empty selections."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrobio import _core
from astrobio.errors import ConfigError, IntegrityError
from astrobio.ingest.formats import get_format, parse_request
from astrobio.ingest.observations import ObservationRequest, ingest_observations, precheck, read_sources, select
from astrobio.reader import CubeReader
from astrobio.stores import _sky
from astrobio.stores.observation import KIND, open_observations



def test_store_holds_real_alerts_and_image_patches(obs_store: Path) -> None:
    s = open_observations(obs_store)
    cols = s.columns
    assert set(cols["product"]) == {"alert", "image"} and set(cols["survey"]) == {"ZTF"}
    alerts = cols[cols["product"] == "alert"]
    # ZTF alerts from 2019-09 to 2024-12, bands from fid, labels from drb with the thresholds
    assert alerts["date"].min() >= "2019-09-03" and alerts["date"].max() <= "2024-12-04"
    assert set(alerts["filter"]) <= {"g", "r", "i"}
    assert (alerts["validation"] == "survey_score").all() and (alerts["confidence"] >= 0.5).all()
    image = cols[cols["product"] == "image"]
    assert set(image["anomaly_type"][image["label"] == 0]) == {"background"}
    assert ((cols["ra"] >= 0) & (cols["ra"] < 360) & (cols["dec"].abs() <= 90)).all()
    counts = s.manifest["counts"]
    assert sum(v["positive"] + v["negative"] for v in counts.values()) == len(cols)
    assert s.manifest["request"]["patch_size"] == 32
    assert {p["package"] for p in s.manifest["provenance"]["sources"]} == {"fink-science", "ztfimg"}


def test_missing_pixels_are_masked_never_silent(obs_store: Path) -> None:
    s = open_observations(obs_store)
    raw = CubeReader(s.patches_path, normalize="none").read(np.arange(len(s))).cubes[:, :, 0]
    masks = raw[:, 3:]
    assert set(np.unique(masks)) <= {0.0, 1.0}
    image = (s.columns["product"] == "image").to_numpy()
    assert (masks[image, 1:] == 0).all()  # the image has no reference or difference: masked
    assert (masks[image, 0] == 1).mean() > 0.99
    # the same alerts read straight from the source: every NaN pixel is a 0 in the mask
    direct = select(read_sources(ObservationRequest(products=("alert",), patch_size=32)), ObservationRequest())
    where = {pid: i for i, pid in enumerate(direct.columns["patch_id"])}
    rows = [i for i, pid in enumerate(s.columns["patch_id"]) if pid in where]
    assert rows
    nan = np.isnan(direct.pixels[[where[s.columns["patch_id"][i]] for i in rows]])
    assert nan.any()  # the real alerts do hold NaN pixels
    assert np.array_equal(masks[rows] == 0, nan)


def test_split_by_object_and_sky_cell_without_leakage(obs_store: Path) -> None:
    cols = open_observations(obs_store).columns
    per_object = cols.groupby("object_id")["split"].nunique()
    assert (per_object == 1).all()
    cells = _sky.cells(cols["ra"].to_numpy(), cols["dec"].to_numpy())
    for split, cell in zip(cols["split"], cells):  # an alert's own cell can differ from its object's first
        assert split in ("train", "val", "test")
    _, _, clash = _sky.assign(cols["ra"], cols["dec"], cols["object_id"], 32 * 1.012 / 3600)
    assert not clash.any()  # no two patches of different splits overlap on the sky
    assert (cols["split"] == "test").any() and (cols["split"] == "train").any()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(10.0, 10.5), st.floats(20.0, 20.5)), min_size=2, max_size=60))
def test_split_rule_is_fixed_and_leaves_no_overlap(points: list[tuple[float, float]]) -> None:
    ra, dec = np.array(points).T
    objects = [f"o{i}" for i in range(len(ra))]
    width = 0.02
    split, cell, clash = _sky.assign(ra, dec, objects, width)
    assert split == [_sky.split_of_cell(c) for c in cell]  # a pure function of the sky cell
    keep = np.flatnonzero(~clash)
    for i in keep:
        for j in keep:
            overlap = abs(ra[i] - ra[j]) * np.cos(np.radians(dec[i])) < width * 0.99 and abs(dec[i] - dec[j]) < width * 0.99
            if overlap:
                assert split[i] == split[j]


def test_core_reads_robustly_normalized_batches(obs_store: Path) -> None:
    s = open_observations(obs_store)
    norm = s.manifest["normalization"]
    idx = np.array([0, 5, len(s) - 1])
    raw = CubeReader(s.patches_path, normalize="none").read(idx).cubes
    got = CubeReader(s.patches_path).read(idx).cubes
    mean = np.asarray(norm["mean"], np.float32)[None, :, None, None, None]
    std = np.asarray(norm["std"], np.float32)[None, :, None, None, None]
    np.testing.assert_allclose(got, (raw - mean) / std, rtol=1e-5, atol=1e-4)
    train = s.samples("train")
    sci = CubeReader(s.patches_path, normalize="none").read(train).cubes[:, 0, 0]
    valid = CubeReader(s.patches_path, normalize="none").read(train).cubes[:, 3, 0] > 0
    assert norm["mean"][0] == pytest.approx(float(np.median(sci[valid])), rel=1e-3)  # median of the train split
    assert _core.verify_store(str(s.patches_path))["samples"] == len(s)


def test_verify_passes_then_refuses_a_changed_column(obs_store: Path, tmp_path: Path) -> None:
    ok, summary = KIND.verify(obs_store)
    assert ok and "patches" in summary
    copy = tmp_path / "copy.zarr"
    shutil.copytree(obs_store, copy)
    chunk = next(p for p in (copy / "label").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[:-1] + bytes([chunk.read_bytes()[-1] ^ 1]))
    with pytest.raises(IntegrityError, match="label"):
        open_observations(copy)


def test_filters_hold_for_every_patch(tmp_path: Path) -> None:
    req = ObservationRequest(products=("alert",), patch_size=16, start="2020-01-01", end="2024-06-30",
                             confidence_threshold=0.95, validation_status=("survey_score",))
    s = open_observations(ingest_observations(tmp_path / "f.zarr", req))
    c = s.columns
    assert len(c) > 0
    assert (c["date"] >= "2020-01-01").all() and (c["date"] <= "2024-06-30T23:59:59").all()
    assert (c["confidence"] >= 0.95).all() and (c["validation"] == "survey_score").all()
    assert s.manifest["request"]["confidence_threshold"] == 0.95


def test_empty_selection_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="selection is empty"):
        ingest_observations(tmp_path / "e.zarr", ObservationRequest(products=("alert",), start="2030-01-01"))
    assert not (tmp_path / "e.zarr").exists()
    # refused as the request is read (a 422 over REST), before any source is opened
    for body, field in (({"patch_size": 80}, "patch_size"), ({"seed": -1}, "seed"),
                        ({"negatives_per_positive": 10**9}, "negatives_per_positive"),
                        ({"confidence_threshold": 1.5}, "confidence_threshold")):
        with pytest.raises(ConfigError, match=field):
            parse_request(get_format("observations"), body)


def test_precheck_counts_what_the_collect_selects() -> None:
    """The REST pre-check reads metadata only (no cutouts); it must select exactly the patches
    the collect then writes."""
    req = ObservationRequest(patch_size=16, max_image_positives=50, negatives_per_positive=2, seed=3,
                             anomaly_types=("unclassified", "background", "BLLac"), confidence_threshold=0.6)
    full = select(read_sources(req), req)
    meta = select(read_sources(req, pixels=False), req)
    assert precheck(req) == len(full) == len(meta) > 0
    assert meta.columns["patch_id"] == full.columns["patch_id"] and meta.pixels.shape[2:] == (0, 0)
    with pytest.raises(ConfigError, match="selection is empty"):
        precheck(ObservationRequest(products=("image",), anomaly_types=("no-such-class",)))


def test_quality_expectations_of_the_real_store(obs_store: Path) -> None:
    s = open_observations(obs_store)
    results = {r["expectation"]: r for r in KIND.expectations(obs_store, s.manifest, {})}
    for name in ("expect_no_duplicate_samples", "expect_no_object_leakage", "expect_no_sky_region_leakage",
                 "expect_valid_coordinates", "expect_image_integrity", "expect_consistent_labels", "expect_survey_coverage",
                 "expect_dates_within_request"):
        assert results[name]["success"], results[name]
    assert results["expect_image_integrity"]["observed_value"]["missing_fraction"]["reference"] > 0  # image patches lack it
    assert "duplicate alert (same object and exposure, re-issued with a new candid)" in s.manifest["dropped"]
