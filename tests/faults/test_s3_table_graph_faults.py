"""The object-storage fault matrix for table and graph stores (read from one private downloaded
copy, `stores._remote.local_view`), against a real local S3 server (moto) and the loopback
proxy: each fault gets the documented astrobio error naming the URL, in bounded time, with no
secret and no temporary path in the message, and nothing left behind in the temporary folder."""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path

import pytest

import astrobio
from astrobio.ingest.catalogue import ingest_catalogue
from astrobio.stores import _remote
from astrobio.stores.graph import open_graphs
from astrobio.stores.table import open_table
from s3_fixtures import S3, FaultProxy, S3Store, fault_proxy, s3, s3_session, s3_store  # noqa: F401  (fixtures)

NASA_CSV = """pl_name,pl_rade,pl_bmasse,pl_orbper,pl_orbsmax,pl_eqt,pl_insol,st_teff,st_rad,st_mass
Kepler-22 b,2.1,,289.86,0.812,262,1.11,5596,0.98,0.97
TRAPPIST-1 e,0.92,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089
Proxima Cen b,,1.07,11.186,0.04857,234,0.65,3050,0.141,0.12
"""


@pytest.fixture
def table(s3: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(prefix, URL) of a fresh table store; Python's temporary folder is this test's own."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    source = tmp_path / "nasa.csv"
    source.write_text(NASA_CSV)
    prefix = f"faults/{uuid.uuid4().hex[:12]}/planets.zarr"
    ingest_catalogue(source, s3.url(prefix), schema="nasa")
    return prefix, s3.url(prefix)


def _chunk(s3: S3, prefix: str, array: str) -> str:
    return next(k for k in s3.keys(f"{prefix}/{array}/") if "/c/" in k)


def _clean(message: str, s3: S3) -> None:
    assert "\n" not in message and "astrobio-fetch" not in message
    assert s3.secret not in message and s3.key_id not in message
    assert list(Path(tempfile.gettempdir()).iterdir()) == []  # the downloaded copy is gone


@pytest.mark.parametrize("fault", ["missing", "truncated", "flipped", "empty", "foreign", "stray"])
def test_a_changed_array_object_is_an_integrity_error_naming_the_url(s3: S3, table: tuple[str, str], tmp_path: Path,
                                                                      fault: str) -> None:
    prefix, url = table
    key = _chunk(s3, prefix, "pl_orbper")
    if fault in ("missing", "truncated", "flipped", "empty"):
        s3.damage(key, fault, flip_at=-3)
    elif fault == "foreign":  # the same column of another valid table: its checksum is intact
        other = tmp_path / "other.csv"
        other.write_text(NASA_CSV.replace("289.86", "290.0"))
        other_prefix = f"faults/{uuid.uuid4().hex[:12]}/other.zarr"
        ingest_catalogue(other, s3.url(other_prefix), schema="nasa")
        s3.put(key, s3.get(_chunk(s3, other_prefix, "pl_orbper")))
    else:  # an object the build did not write, inside an array
        s3.put(f"{prefix}/pl_orbper/c/7", s3.get(key))
    with pytest.raises(astrobio.IntegrityError, match="array 'pl_orbper' digest is") as e:
        open_table(url)
    assert e.value.path == url and str(e.value).startswith(url)
    _clean(str(e.value), s3)


@pytest.mark.parametrize("fault", ["no manifest", "not complete", "another format"])
def test_a_missing_incomplete_or_foreign_manifest_is_data_not_found(s3: S3, table: tuple[str, str], s3_store: S3Store,
                                                                    fault: str) -> None:
    prefix, url = table
    if fault == "no manifest":
        s3.delete(f"{prefix}/zarr.json")
        want = "is not a zarr v3 group"
    elif fault == "not complete":
        doc = json.loads(s3.get(f"{prefix}/zarr.json"))
        doc["attributes"]["astrobio"]["complete"] = False
        s3.put(f"{prefix}/zarr.json", json.dumps(doc).encode())
        want = "incomplete"
    else:
        url, want = s3_store.url, "holds format 'astrobio.store', not 'astrobio.graphs'"
    with pytest.raises(astrobio.DataNotFoundError, match=want) as e:
        (open_graphs if fault == "another format" else open_table)(url)
    assert url in str(e.value)
    _clean(str(e.value).split(". ")[0], s3)


def test_wrong_credentials_are_one_line_without_the_secret(s3: S3, table: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = table
    secret = "wrong-secret-0123456789abcdef"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    t0 = time.monotonic()
    with pytest.raises(astrobio.ConfigError, match="access denied") as e:
        open_table(url)
    assert time.monotonic() - t0 < 15 and secret not in str(e.value) and url in str(e.value) and "<" not in str(e.value)
    _clean(str(e.value), s3)


def test_a_server_slower_than_the_timeout_fails_in_bounded_time(s3: S3, table: tuple[str, str], fault_proxy: FaultProxy,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = table
    # a timeout far above a real answer of the local server even on a loaded machine (the
    # requests before and after the slow spell run under it too), and a delay far above it
    monkeypatch.setenv("ASTROBIO_S3_TIMEOUT", "2")
    monkeypatch.setenv("ASTROBIO_S3_RETRIES", "1")
    monkeypatch.setenv("ASTROBIO_S3_RETRY_TIMEOUT", "3")
    fault_proxy.delay = 8.0
    t0 = time.monotonic()
    with pytest.raises(astrobio.DataNotFoundError, match="cannot read from object storage") as e:
        open_table(url)
    assert time.monotonic() - t0 < 15
    _clean(str(e.value), s3)
    fault_proxy.delay = 0.0
    assert len(open_table(url)[0]) == 3


def test_a_store_listing_more_than_a_table_may_hold_is_refused_before_any_download(
        s3: S3, table: tuple[str, str], fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = table
    monkeypatch.setattr(_remote, "SNAPSHOT_MAX_BYTES", 1024)
    gets = fault_proxy.gets
    with pytest.raises(astrobio.IntegrityError, match="more than a table or graph store may hold"):
        open_table(url)
    assert fault_proxy.gets - gets == 2  # the manifest and the listing, no array object
