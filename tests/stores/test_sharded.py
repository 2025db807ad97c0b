"""Sharded cube stores (`shard_samples`: consecutive samples packed into one object with an
index): every read equals the unsharded store's bit for bit, on disk and from s3://, and
`verify` checks every inner chunk. Damaged shards: tests/faults/test_shard_faults.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astrobio
from astrobio import _core
from conftest import build_fixture, shard_file
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


def test_a_loader_without_workers_reads_a_sharded_s3_store_ahead(s3_sharded):
    import threading

    from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader

    plain, sharded = s3_sharded
    seen: list[str] = []

    class Recorder(CubeBatchDataset):
        def _read_in_process(self, indices, pinned=False):
            seen.append(threading.current_thread().name)
            return super()._read_in_process(indices, pinned)

    sampler = BatchIndexSampler(np.arange(12), 4, shuffle=True, seed=3, shuffle_block=SHARD)
    got = [b["cubes"].numpy().copy() for b in make_loader(Recorder(sharded.url), sampler)]
    want = [b["cubes"].numpy() for b in make_loader(CubeBatchDataset(plain.local.path), sampler, readahead=False)]
    assert all(np.array_equal(bits(a), bits(b)) for a, b in zip(got, want)) and len(got) == len(want) == 3
    assert seen.count("astrobio-readahead_0") >= 2  # every batch after the first was read ahead
