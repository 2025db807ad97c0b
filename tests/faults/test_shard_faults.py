"""Sharded cube stores under damage, on disk and at s3:// URLs: a flipped byte in an inner chunk
or in the index, a shard truncated or missing, an index entry absent or pointing past the data,
a stray shard, a layout the core does not read, a shard of another store. Each gives the
documented error naming the run and the sample's position in its shard (`cubes/c/1/0/0/0/0[2]`),
never a wrong batch; other shards still read."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

import astrobio
from astrobio import _core
from astrobio.cli import main as cli_main
from conftest import build_fixture, shard_file
from s3_fixtures import S3, s3, s3_session, upload_fixture  # noqa: F401  (fixtures)

SHARD = 5  # runs of 4, 3, 5 samples: shards hold samples 0-4, 5-9, 10-11 (the last one partial)
INDEX = SHARD * 16 + 4  # the index at the end: (offset, nbytes) per sample + its crc32c


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
        start = len(data) - INDEX
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
    fx = build_fixture(tmp_path / "s.zarr", shard_samples=SHARD)
    damage(shard_file(fx, 1))  # samples 5-9: run-1 (5, 6), run-2 (7, 8, 9)
    reader = _core.BatchReader(str(fx.path), "per_variable", 2)
    reader.read_batch([0, 1, 11])  # other shards still read
    with pytest.raises(astrobio.IntegrityError, match=reason) as err:
        reader.read_batch([0, sample, 11])
    assert err.value.run == ("run-1" if sample < 7 else "run-2") and err.value.chunk == f"cubes/c/1/0/0/0/0[{sample - 5}]"
    report = astrobio.open_store(fx.path).verify()
    assert not report["ok"] and report["chunks_failed"] >= 1
    assert all(f["chunk"].startswith("cubes/c/1/0/0/0/0[") for f in report["failures"])
    assert cli_main(["validate", "--store", str(fx.path)]) == 1


def test_a_stray_shard_is_found_by_the_scan(tmp_path):
    fx = build_fixture(tmp_path / "s.zarr", shard_samples=SHARD)
    stray = shard_file(fx, 3)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(shard_file(fx, 0).read_bytes())
    report = astrobio.open_store(fx.path).verify()
    assert report["unexpected_files"] == 1 and "belongs to no sample" in report["failures"][0]["reason"]


def test_a_layout_the_core_does_not_read_is_refused_with_the_reason(tmp_path):
    fx = build_fixture(tmp_path / "s.zarr", shard_samples=SHARD)
    meta_path = Path(fx.path) / "cubes" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["codecs"][0]["configuration"]["index_codecs"] = [{"name": "bytes", "configuration": {"endian": "big"}}]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(astrobio.IntegrityError, match="sharded cubes: the shard index must be encoded"):
        _core.BatchReader(str(fx.path), "none", 1)


@pytest.mark.parametrize("fault, reason", [
    ("missing", "chunk missing"),
    ("truncated", "shard index|outside the shard|less than its"),
    ("flipped-index", "shard index checksum mismatch"),
    ("flipped-chunk", "checksum mismatch"),
])
def test_a_damaged_shard_object_fails_the_read(s3: S3, tmp_path, fault, reason):
    up = upload_fixture(s3, build_fixture(tmp_path / "s.zarr", shard_samples=SHARD))
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
    assert not astrobio.open_store(up.url).verify()["ok"]


def test_a_shard_of_another_store_is_caught_by_the_digest(s3: S3, tmp_path):
    """A valid shard of another store (index and chunk checksums intact, values in range) reads;
    only the digests tell, and `validate` (the trainer's pre-flight check) refuses the store."""
    up = upload_fixture(s3, build_fixture(tmp_path / "s.zarr", shard_samples=SHARD))
    other = build_fixture(tmp_path / "other.zarr", seed=7, shard_samples=SHARD)
    s3.put(f"{up.prefix}/cubes/c/1/0/0/0/0", shard_file(other, 1).read_bytes())
    store = astrobio.open_store(up.url)
    assert store.verify()["ok"]
    with pytest.raises(astrobio.IntegrityError, match="digest"):
        store.verify_digest()
    assert cli_main(["validate", "--store", up.url]) == 1
