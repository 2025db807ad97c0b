"""The object-storage fault matrix, against a real local S3 server (moto) and a loopback proxy
that the tests make slow or throttling: each fault gets the documented astrobio error, within a
bounded time, with no secret in the message and no silently wrong batch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import astrobio
from astrobio import _core
from astrobio.cli import main as cli_main
from astrobio.reader import CubeReader
from astrobio.stores import _remote
from conftest import build_fixture
from s3_fixtures import (  # noqa: F401  (fixtures)
    BUCKET, S3, FaultProxy, S3Store, fault_proxy, s3, s3_session, s3_store, start_second_server)

CHUNK = "cubes/c/{}/0/0/0/0"


def chunk_key(store: S3Store, sample: int) -> str:
    return f"{store.prefix}/{CHUNK.format(sample)}"


def read(url: str, indices: list[int]) -> np.ndarray:
    return _core.BatchReader(url, "per_variable", 2).read_batch(indices)


@pytest.mark.parametrize("fault, reason", [
    ("missing", "chunk missing"),
    ("truncated", "checksum mismatch"),
    ("flipped", "checksum mismatch"),
    ("empty", "cannot decode"),
])
def test_a_bad_chunk_object_is_named_by_run_sample_and_chunk(s3: S3, s3_store: S3Store, fault: str, reason: str) -> None:
    s3.damage(chunk_key(s3_store, 5), fault, flip_at=40)
    reader = _core.BatchReader(s3_store.url, "per_variable", 2)
    read(s3_store.url, [0, 1, 2])  # other samples still read
    with pytest.raises(astrobio.IntegrityError) as e:
        reader.read_batch([0, 5, 1])
    assert (e.value.run, e.value.sample, e.value.chunk) == ("run-1", 5, CHUNK.format(5))
    assert reason in str(e.value)
    report = astrobio.open_store(s3_store.url).verify()
    assert not report["ok"] and report["chunks_failed"] == 1 and report["failures"][0]["sample"] == 5


def test_an_object_larger_than_any_chunk_is_refused_unread(s3: S3, s3_store: S3Store) -> None:
    s3.put(chunk_key(s3_store, 3), b"\0" * (8 << 20))
    with pytest.raises(astrobio.IntegrityError, match="more than it may hold") as e:
        read(s3_store.url, [3])
    assert e.value.sample == 3


def test_an_object_from_another_store_is_caught_by_the_digest(s3: S3, s3_store: S3Store, tmp_path: Path) -> None:
    """A valid chunk of another store (checksum intact, values in range) reads; only the digests
    tell, and `validate` (the trainer's pre-flight check) refuses the store."""
    other = build_fixture(tmp_path / "other.zarr", seed=7)
    s3.put(chunk_key(s3_store, 2), (Path(other.path) / CHUNK.format(2)).read_bytes())
    store = astrobio.open_store(s3_store.url)
    assert store.verify()["ok"]
    with pytest.raises(astrobio.IntegrityError, match="digest"):
        store.verify_digest()
    assert cli_main(["validate", "--store", s3_store.url]) == 1


def test_a_manifest_without_its_arrays_is_not_a_store(s3: S3, s3_store: S3Store) -> None:
    for key in s3.keys(f"{s3_store.prefix}/cubes/"):
        s3.delete(key)
    with pytest.raises(astrobio.DataNotFoundError, match="no array \"cubes\""):
        astrobio.open_store(s3_store.url)


def test_a_missing_store_or_bucket_is_data_not_found_naming_the_url(s3: S3) -> None:
    url = s3.url("nothing/here.zarr")
    with pytest.raises(astrobio.DataNotFoundError, match="zarr.json missing") as e:
        CubeReader(url).read([0])
    assert url in str(e.value)
    missing_bucket = "s3://no-such-bucket-astrobio/x.zarr"
    with pytest.raises(astrobio.DataNotFoundError) as e:
        astrobio.open_store(missing_bucket)
    assert missing_bucket in str(e.value)


def test_wrong_credentials_are_one_clear_line_without_the_secret(s3: S3, s3_store: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wrong-secret-0123456789abcdef"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    t0 = time.monotonic()
    with pytest.raises(astrobio.ConfigError) as e:
        astrobio.open_store(s3_store.url)
    assert time.monotonic() - t0 < 15
    text = str(e.value)
    assert "access denied" in text and s3_store.url in text
    assert secret not in text and "\n" not in text and "<" not in text  # the server's XML body is not quoted
    assert cli_main(["validate", "--store", s3_store.url]) == 1


def test_unsupported_and_credential_bearing_urls_are_config_errors(s3: S3) -> None:
    with pytest.raises(astrobio.ConfigError, match="unsupported"):
        _core.BatchReader("gs://bucket/x.zarr")
    with pytest.raises(astrobio.ConfigError) as e:
        _core.BatchReader("s3://AKIDEXAMPLE:hunter2-secret@bucket/x.zarr")
    assert "hunter2-secret" not in str(e.value)


def test_the_server_stopped_mid_epoch_fails_the_next_batch_in_bounded_time(s3_session: S3, s3: S3, s3_store: S3Store,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    stop = start_second_server(s3, s3_store.local.path, s3_store.url, monkeypatch)  # one this test may stop
    stopped = False
    try:
        reader = CubeReader(s3_store.url, threads=2)
        first = reader.read([0, 1, 2]).cubes
        np.testing.assert_array_equal(first, CubeReader(s3_store.local.path).read([0, 1, 2]).cubes)
        stop()
        stopped = True
        t0 = time.monotonic()
        with pytest.raises(astrobio.DataNotFoundError, match="cannot read from object storage") as e:
            reader.read([3, 4, 5])
        assert time.monotonic() - t0 < 30
        assert "\n" not in str(e.value) and s3.secret not in str(e.value)
    finally:
        if not stopped:
            stop()


def test_slow_responses_past_the_timeout_fail_instead_of_hanging(s3: S3, s3_store: S3Store, fault_proxy: FaultProxy,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # a timeout far above a real answer of the local server even on a loaded machine (the
    # requests before and after the slow spell run under it too), and a delay far above it
    monkeypatch.setenv("ASTROBIO_S3_TIMEOUT", "2")
    monkeypatch.setenv("ASTROBIO_S3_RETRIES", "1")
    monkeypatch.setenv("ASTROBIO_S3_RETRY_TIMEOUT", "3")
    reader = _core.BatchReader(s3_store.url, "per_variable", 2)  # opens at full speed
    fault_proxy.delay = 8.0
    t0 = time.monotonic()
    with pytest.raises(astrobio.DataNotFoundError, match="cannot read from object storage"):
        reader.read_batch([0, 1])
    assert time.monotonic() - t0 < 15
    fault_proxy.delay = 0.0
    np.testing.assert_array_equal(reader.read_batch([0, 1]), read(s3_store.local.path.as_posix(), [0, 1]))


def test_a_503_burst_is_retried_with_backoff_and_the_batch_is_exact(s3: S3, s3_store: S3Store, fault_proxy: FaultProxy) -> None:
    reader = _core.BatchReader(s3_store.url, "per_variable", 2)
    fault_proxy.fail_next = 6
    got = reader.read_batch(list(range(12)))
    assert fault_proxy.served_503 == 6
    np.testing.assert_array_equal(got, read(s3_store.local.path.as_posix(), list(range(12))))


def test_throttling_that_outlasts_the_retries_is_an_error_in_bounded_time(s3: S3, s3_store: S3Store, fault_proxy: FaultProxy,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTROBIO_S3_RETRIES", "2")
    reader = _core.BatchReader(s3_store.url, "per_variable", 2)
    fault_proxy.fail_next = 10**6
    t0 = time.monotonic()
    with pytest.raises(astrobio.DataNotFoundError, match="cannot read from object storage") as e:
        reader.read_batch([0])
    assert time.monotonic() - t0 < 15
    assert "503" in str(e.value) or "SlowDown" in str(e.value) or "Service Unavailable" in str(e.value)


def test_bad_timeout_settings_are_config_errors(s3: S3, s3_store: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTROBIO_S3_TIMEOUT", "soon")
    with pytest.raises(astrobio.ConfigError, match="ASTROBIO_S3_TIMEOUT"):
        _core.BatchReader(s3_store.url)


def test_a_bucket_listing_names_no_foreign_keys(s3: S3, s3_store: S3Store) -> None:
    """A stray object under cubes/c/ is reported by the scan, like a stray file locally."""
    s3.put(f"{s3_store.prefix}/cubes/c/99/0/0/0/0", s3.get(chunk_key(s3_store, 0)))
    report = astrobio.open_store(s3_store.url).verify()
    assert not report["ok"] and report["unexpected_files"] == 1
    assert report["failures"][0]["chunk"] == "cubes/c/99/0/0/0/0"
    assert _remote.listing(s3_store.url, "cubes/c/99/") == [("cubes/c/99/0/0/0/0", len(s3.get(chunk_key(s3_store, 0))))]
    assert BUCKET in s3_store.url
