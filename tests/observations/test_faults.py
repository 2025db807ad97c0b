"""Faults in survey sources, each refused or handled with one clear line: a truncated or
corrupted FITS, a stamp without coordinates, an all-NaN patch, a detection at the image edge,
a truncated parquet. The broken files are made from the real sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astrobio.datasets.sources import package_file
from astrobio.errors import IntegrityError
from astrobio.ingest._ztf_alerts import read_alerts
from astrobio.ingest._ztf_image import read_image
from astrobio.ingest.observations import ALERT_FILES, IMAGE_FILES, VSX_FILE

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
fits = pytest.importorskip("astropy.io.fits")

ALERTS = ALERT_FILES[0]  # alerts.parquet, 51 real alerts


def _alerts() -> Path:
    return package_file("fink_science", ALERTS)


def _rewrite(tmp: Path, change) -> Path:
    """A copy of the real alert file with `change(rows)` applied to its first alerts."""
    rows = pq.read_table(_alerts(), columns=["objectId", "candidate", "cutoutScience", "cutoutTemplate",
                                            "cutoutDifference"]).to_pylist()[:4]
    change(rows)
    out = tmp / "alerts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out


def test_truncated_parquet_is_refused(tmp_path: Path) -> None:
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(_alerts().read_bytes()[:50_000])
    with pytest.raises(IntegrityError, match="not a readable parquet file") as info:
        read_alerts([(cut, "cut.parquet")])
    assert "\n" not in str(info.value).strip()


def test_corrupted_stamp_names_the_alert(tmp_path: Path) -> None:
    def corrupt(rows):
        rows[1]["cutoutDifference"] = {**rows[1]["cutoutDifference"], "stampData": rows[1]["cutoutDifference"]["stampData"][:200]}
    path = _rewrite(tmp_path, corrupt)
    with pytest.raises(IntegrityError, match=r"alert \d+ of ZTF\w+, difference stamp: not a readable FITS stamp"):
        read_alerts([(path, "alerts.parquet")])


def test_stamp_without_coordinates_is_dropped_with_its_reason(tmp_path: Path) -> None:
    def no_coords(rows):
        rows[0]["candidate"] = {**rows[0]["candidate"], "ra": None, "dec": None}
    got = read_alerts([(_rewrite(tmp_path, no_coords), "alerts.parquet")], real=0.0, bogus=0.0)
    assert len(got) == 3 and got.dropped["alert without valid coordinates or time"] == 1


def test_all_nan_patch_is_dropped_with_its_reason(tmp_path: Path) -> None:
    def blank(rows):
        hdu = fits.PrimaryHDU(np.full((63, 63), np.nan, np.float32))
        import gzip
        import io
        buf = io.BytesIO()
        hdu.writeto(buf)
        rows[2]["cutoutScience"] = {**rows[2]["cutoutScience"], "stampData": gzip.compress(buf.getvalue())}
    got = read_alerts([(_rewrite(tmp_path, blank), "alerts.parquet")], real=0.0, bogus=0.0)
    assert len(got) == 3 and got.dropped["a stamp with no finite pixel"] == 1


def _image_paths():
    return [package_file("ztfimg", f) for f in IMAGE_FILES] + [package_file("fink_science", VSX_FILE)]


def test_truncated_fits_image_is_refused(tmp_path: Path) -> None:
    sci, msk, vsx = _image_paths()
    cut = tmp_path / "sci.fits"
    cut.write_bytes(sci.read_bytes()[:2_000_000])
    with pytest.raises(IntegrityError, match="science image is not a readable FITS image"):
        read_image(cut, msk, vsx, ("sci.fits", "msk.fits"))


def test_detection_at_the_image_edge_is_masked_not_shifted() -> None:
    sci, msk, vsx = _image_paths()
    got = read_image(sci, msk, vsx, ("sci.fits", "msk.fits"), size=32, max_positives=None, negatives_per_positive=0)
    x, y = np.asarray(got.columns["x"]), np.asarray(got.columns["y"])
    edge = np.flatnonzero((x < 10) | (y < 10))
    assert len(edge) > 0  # the real image has sources within 10 px of its border
    for i in edge[:5]:
        sci_px = got.pixels[i, 0]
        assert np.isnan(sci_px).any()  # the part outside the image is missing (masked)...
        assert np.isfinite(sci_px[16, 16])  # ...and the detection stays at the centre
