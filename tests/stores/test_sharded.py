"""Sharded cube stores (`shard_samples`: consecutive samples packed into one object with an
index): every read equals the unsharded store's bit for bit, on disk and from s3://; damaged
shards, indexes and inner chunks give the documented IntegrityError naming the run and the
shard position; `verify` checks every inner chunk and finds stray objects."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astrobio
from astrobio import _core
from conftest import build_fixture
from s3_fixtures import S3, S3Store, s3, s3_session, upload_fixture  # noqa: F401  (fixtures)

SHARD = 5  # runs of 4, 3, 5 samples: shards hold samples 0-4, 5-9, 10-11 (the last one partial)


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    plain = build_fixture(root / "plain.zarr")
    sharded = build_fixture(root / "sharded.zarr", shard_samples=SHARD)
    return plain, sharded


def shard_file(fx, shard: int) -> Path:
    return Path(fx.path) / "cubes" / "c" / str(shard) / "0" / "0" / "0" / "0"


def test_a_sharded_store_has_one_object_per_shard_and_reads_like_the_plain_one(pair):
    plain, sharded = pair
    assert sorted(p.name for p in (Path(sharded.path) / "cubes" / "c").iterdir()) == ["0", "1", "2"]
    for normalize in ("per_variable", "per_level", "none"):
        a, b = _core.BatchReader(str(plain.path), normalize, 2), _core.BatchReader(str(sharded.path), normalize, 2)
        for idx in ([0, 5, 11, 3], [9, 10, 4, 4], list(range(12))):
            np.testing.assert_array_equal(bits(b.read_batch(idx)), bits(a.read_batch(idx)))
            np.testing.assert_array_equal(bits(b.read_params(idx)), bits(a.read_params(idx)))
            np.testing.assert_array_equal(b.read_batch_bf16(idx), a.read_batch_bf16(idx))
    report = astrobio.open_store(sharded.path).verify()
    assert report["ok"] and report["chunks_checked"] == 12 and report["unexpected_files"] == 0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shard=st.integers(1, 13), batch=st.lists(st.integers(0, 11), min_size=1, max_size=16))
def test_any_shard_size_and_batch_reads_the_same_values(tmp_path_factory, shard, batch):
    root = tmp_path_factory.mktemp("any")
    ref = build_fixture(root / "plain.zarr", shape=(2, 2, 4, 4))
    fx = build_fixture(root / "s.zarr", shape=(2, 2, 4, 4), shard_samples=shard)
    got = _core.BatchReader(str(fx.path), "none", 1).read_batch(batch)
    np.testing.assert_array_equal(got, ref.cubes[batch])
    assert len(list((Path(fx.path) / "cubes" / "c").iterdir())) == -(-12 // shard)


def _damaged(tmp_path: Path, damage) -> tuple[str, astrobio.Store]:
    fx = build_fixture(tmp_path / "s.zarr", shard_samples=SHARD)
    damage(shard_file(fx, 1))  # samples 5-9: run-1 (5, 6), run-2 (7, 8, 9)
    return str(fx.path), astrobio.open_store(fx.path)


def _flip(offset_from_end: int | None = None, at: int | None = None):
    def damage(f: Path) -> None:
        data = bytearray(f.read_bytes())
        i = len(data) - offset_from_end if offset_from_end is not None else at
        data[i] ^= 0x01
        f.write_bytes(bytes(data))
    return damage


def _entry(j: int, offset: int, nbytes: int):
    """Rewrite index entry j (and the index's crc32c, so only the entry is wrong)."""
    def damage(f: Path) -> None:
        import google_crc32c

        data = bytearray(f.read_bytes())
        start = len(data) - (SHARD * 16 + 4)
        data[start + 16 * j : start + 16 * j + 16] = struct.pack("<QQ", offset, nbytes)
        data[-4:] = struct.pack("<I", google_crc32c.value(bytes(data[start:-4])))
        f.write_bytes(bytes(data))
    return damage


@pytest.mark.parametrize("damage, sample, reason", [
    (_flip(at=20), 5, "checksum mismatch"),                             # inside the first inner chunk
    (_flip(offset_from_end=10), 5, "shard index checksum mismatch"),    # inside the index
    (lambda f: f.write_bytes(f.read_bytes()[:40]), 7, "less than its"),  # truncated below its index
    (lambda f: f.unlink(), 8, "chunk missing"),
    (_entry(2, 2**64 - 1, 2**64 - 1), 7, "chunk missing"),                # an inner chunk never written
    (_entry(3, 10**9, 100), 5, "outside the shard"),                     # an entry pointing past the data
], ids=["inner-flip", "index-flip", "truncated", "missing-shard", "absent-entry", "entry-out-of-bounds"])
def test_a_damaged_shard_fails_the_read_naming_run_and_position(tmp_path, damage, sample, reason):
    path, store = _damaged(tmp_path, damage)
    reader = _core.BatchReader(path, "per_variable", 2)
    reader.read_batch([0, 1, 11])  # other shards still read
    with pytest.raises(astrobio.IntegrityError, match=reason) as err:
        reader.read_batch([0, sample, 11])
    run = "run-1" if sample < 7 else "run-2"
    assert err.value.run == run and err.value.chunk == f"cubes/c/1/0/0/0/0[{sample - 5}]"
    report = store.verify()
    assert not report["ok"] and report["chunks_failed"] >= 1
    assert all(f["chunk"].startswith("cubes/c/1/0/0/0/0[") for f in report["failures"])


def test_verify_finds_a_stray_shard(pair, tmp_path):
    fx = build_fixture(tmp_path / "s.zarr", shard_samples=SHARD)
    stray = shard_file(fx, 3)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(shard_file(fx, 0).read_bytes())
    report = astrobio.open_store(fx.path).verify()
    assert report["unexpected_files"] == 1 and "belongs to no sample" in report["failures"][0]["reason"]


def test_a_layout_the_core_does_not_read_is_refused_with_the_reason(tmp_path):
    import json

    fx = build_fixture(tmp_path / "s.zarr", shard_samples=SHARD)
    meta_path = Path(fx.path) / "cubes" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["codecs"][0]["configuration"]["index_codecs"] = [{"name": "bytes", "configuration": {"endian": "big"}}]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(astrobio.IntegrityError, match="sharded cubes: the shard index must be encoded"):
        _core.BatchReader(str(fx.path), "none", 1)


def test_the_writer_refuses_a_shard_of_no_samples(tmp_path):
    with pytest.raises(astrobio.ConfigError, match="shard_samples"):
        build_fixture(tmp_path / "s.zarr", shard_samples=0)


# --- object storage -------------------------------------------------------------------------


@pytest.fixture
def s3_sharded(s3: S3, pair) -> tuple[S3Store, S3Store]:
    plain, sharded = pair
    return upload_fixture(s3, plain), upload_fixture(s3, sharded)


def test_sharded_batches_from_s3_equal_the_local_store(s3_sharded):
    plain, sharded = s3_sharded
    remote = _core.BatchReader(sharded.url, "per_variable", 2)
    local = _core.BatchReader(str(plain.local.path), "per_variable", 2)
    for idx in ([0, 5, 11, 3], [9, 10, 4, 4], list(range(12)), [6]):
        np.testing.assert_array_equal(bits(remote.read_batch(idx)), bits(local.read_batch(idx)))
    assert remote.prefetch([1, 2]) is False  # fetched when read: neighbours share range requests
    report = astrobio.open_store(sharded.url).verify()
    assert report["ok"] and report["chunks_checked"] == 12


@pytest.mark.parametrize("fault, reason", [
    ("missing", "chunk missing"),
    ("truncated", "shard index|outside the shard|less than its"),
    ("flipped-index", "shard index checksum mismatch"),
    ("flipped-chunk", "checksum mismatch"),
])
def test_a_damaged_shard_object_fails_the_read(s3: S3, tmp_path, fault, reason):
    fx = build_fixture(tmp_path / "s.zarr", shard_samples=SHARD)
    up = upload_fixture(s3, fx)
    key = f"{up.prefix}/cubes/c/1/0/0/0/0"
    size = len(s3.get(key))
    if fault.startswith("flipped"):
        s3.damage(key, "flipped", size - 10 if fault == "flipped-index" else 20)
    else:
        s3.damage(key, fault, 0)
    reader = _core.BatchReader(up.url, "per_variable", 2)
    reader.read_batch([0, 11])
    with pytest.raises(astrobio.IntegrityError, match=reason) as err:
        reader.read_batch([0, 5, 11])
    assert err.value.run == "run-1" and err.value.chunk == "cubes/c/1/0/0/0/0[0]"
    assert "<" not in str(err.value)
