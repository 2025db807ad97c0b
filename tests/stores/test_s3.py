"""Cube stores in object storage (s3://) against a real local S3 server (moto, real HTTP, signed
requests): reads equal the local store's bit for bit, write/verify/validate on URLs, the commit
rule on upload, DataLoader workers each with their own runtime."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import astrobio
from astrobio import _core
from astrobio.cli import main as cli_main
from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader
from astrobio.reader import CubeReader
from astrobio.stores import _remote
from conftest import build_fixture
from s3_fixtures import S3, FaultProxy, S3Store, fault_proxy, s3, s3_session, s3_store  # noqa: F401  (fixtures)

BATCHES = [[0, 5, 11, 3], [7, 7, 1], list(range(12))]


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32)


@pytest.mark.parametrize("normalize", ["per_variable", "per_level", "none"])
def test_batches_from_s3_equal_the_local_store_bit_for_bit(s3_store: S3Store, normalize: str) -> None:
    local = _core.BatchReader(str(s3_store.local.path), normalize, 2)
    remote = _core.BatchReader(s3_store.url, normalize, 2)
    assert (remote.n_samples, remote.sample_shape, remote.n_params) == (local.n_samples, local.sample_shape, local.n_params)
    for idx in BATCHES:
        np.testing.assert_array_equal(bits(remote.read_batch(idx)), bits(local.read_batch(idx)))
        np.testing.assert_array_equal(bits(remote.read_params(idx)), bits(local.read_params(idx)))
    out = np.full((3, *remote.sample_shape), np.nan, dtype=np.float32)
    remote.read_batch([2, 9, 4], out=out)
    np.testing.assert_array_equal(bits(out), bits(local.read_batch([2, 9, 4])))
    for got, want in zip(remote.normalization(), local.normalization()):
        np.testing.assert_array_equal(got, want)
    assert remote.path == s3_store.url
    assert s3_store.url in repr(remote)


def test_open_verify_and_digest_on_a_url(s3_store: S3Store) -> None:
    store = astrobio.open_store(s3_store.url)
    assert store.path == s3_store.url
    assert store.manifest == astrobio.open_store(s3_store.local.path).manifest
    report = store.verify()
    assert report["ok"] and report["chunks_checked"] == 12 and report["unexpected_files"] == 0
    assert report["bytes_decoded"] == store.verify()["bytes_decoded"] > 0
    store.verify_digest()  # digests of the objects equal those recorded from the local build
    assert np.array_equal(store.samples("train"), astrobio.open_store(s3_store.local.path).samples("train"))


def test_cube_reader_and_its_pickle_keep_the_url(s3_store: S3Store) -> None:
    reader = CubeReader(s3_store.url, threads=1)
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.path == s3_store.url and isinstance(clone.path, str)
    native = pickle.loads(pickle.dumps(reader.native))
    assert native.path == s3_store.url
    local = CubeReader(s3_store.local.path, threads=1)
    np.testing.assert_array_equal(bits(clone.read([1, 2]).cubes), bits(local.read([1, 2]).cubes))
    with pytest.raises(astrobio.ConfigError, match="pathlib.Path"):
        CubeReader(Path(s3_store.url))


def test_write_store_to_a_url_equals_a_local_write(s3: S3, tmp_path: Path) -> None:
    local = build_fixture(tmp_path / "local.zarr", seed=3)
    url = s3.url("written/direct.zarr")
    runs = [(k, local.runs[k], local.params[k]) for k in local.runs]
    split = {"train": ["run-0", "run-1"], "test": ["run-2"]}
    got = astrobio.write_store(url, runs, variables=local.variables, params=[astrobio.Variable(f"p{i}", "1", (-50.0, 50.0)) for i in range(2)],
                               split=split, name="fixture.zarr", provenance={"source": "test fixture", "kind": "generated"})
    assert got == url
    remote, here = astrobio.open_store(url), astrobio.open_store(local.path)
    assert remote.manifest["content_digest"] == here.manifest["content_digest"]
    assert remote.manifest["digests"] == here.manifest["digests"]
    remote.verify_digest()
    np.testing.assert_array_equal(bits(CubeReader(url).read(range(12)).cubes), bits(CubeReader(local.path).read(range(12)).cubes))
    assert not list(tmp_path.parent.glob("astrobio-upload-*"))  # the local staging is removed


def test_replacing_a_store_removes_the_old_objects(s3: S3, tmp_path: Path) -> None:
    url = s3.url("written/replaced.zarr")
    _remote.upload(Path(build_fixture(tmp_path / "big.zarr", run_lengths=(4, 3, 5)).path), url)
    small = build_fixture(tmp_path / "small.zarr", run_lengths=(2, 1), seed=5)
    _remote.upload(Path(small.path), url)
    store = astrobio.open_store(url)
    assert store.n_samples == 3
    report = store.verify()
    assert report["ok"] and report["unexpected_files"] == 0
    store.verify_digest()
    assert s3.keys("written/replaced.zarr/cubes/c/") == [f"written/replaced.zarr/cubes/c/{i}/0/0/0/0" for i in range(3)]


def test_a_killed_upload_leaves_no_store_that_opens(s3: S3, s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload dies before its last object (the manifest-bearing zarr.json): over an existing
    store, or at a new URL, nothing opens there afterwards."""
    other = build_fixture(tmp_path / "other.zarr", seed=9)
    real_put = _remote.put

    def put(url: str, key: str, data: bytes) -> None:
        if key == "zarr.json":
            raise KeyboardInterrupt  # the process is killed here
        real_put(url, key, data)

    monkeypatch.setattr(_remote, "put", put)
    for url in (s3_store.url, s3.url("written/never.zarr")):
        with pytest.raises(KeyboardInterrupt):
            _remote.upload(Path(other.path), url)
        with pytest.raises(astrobio.DataNotFoundError, match="zarr.json missing"):
            astrobio.open_store(url)
        with pytest.raises(astrobio.DataNotFoundError):
            CubeReader(url).read([0])


def test_cli_validate_on_a_url(s3_store: S3Store, s3: S3, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["validate", "--store", s3_store.url]) == 0
    out = capsys.readouterr().out
    assert "cube fixture.zarr" in out and "12 samples" in out
    s3.delete(f"{s3_store.prefix}/cubes/c/4/0/0/0/0")
    assert cli_main(["validate", "--store", s3_store.url]) == 1
    assert "chunk missing" in capsys.readouterr().out


def test_dataloader_workers_read_s3_with_their_own_runtime(s3_store: S3Store) -> None:
    sampler = BatchIndexSampler(np.arange(12), 4, shuffle=True, seed=1)
    want = [b["cubes"] for b in make_loader(CubeBatchDataset(s3_store.local.path), sampler)]
    dataset = CubeBatchDataset(s3_store.url)
    dataset.reader.read([0])  # the parent built its runtime before forking
    parent = _core.runtime_pid()
    got = [b["cubes"] for b in make_loader(dataset, sampler, num_workers=2, multiprocessing_context="fork", timeout=60)]
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        assert torch.equal(g.view(torch.int32), w.view(torch.int32))
    assert _core.runtime_pid() == parent


def test_read_ahead_fetches_the_next_batch_once_and_serves_it(s3_store: S3Store, fault_proxy: FaultProxy,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reader = _core.BatchReader(s3_store.url, "per_variable", 2)
    local = _core.BatchReader(str(s3_store.local.path), "per_variable", 2)
    assert local.prefetch([1, 2]) is False  # the page cache serves local stores
    gets = fault_proxy.gets
    assert reader.prefetch([3, 8, 1]) is True
    np.testing.assert_array_equal(bits(reader.read_batch([0])), bits(local.read_batch([0])))  # another batch meanwhile
    np.testing.assert_array_equal(bits(reader.read_batch([3, 8, 1])), bits(local.read_batch([3, 8, 1])))
    assert fault_proxy.gets - gets == 4  # each chunk object fetched once: 3 ahead, 1 for the batch between
    monkeypatch.setenv("ASTROBIO_S3_READAHEAD_MB", "0")
    assert _core.BatchReader(s3_store.url, "per_variable", 1).prefetch([0]) is False


def test_a_loader_without_workers_reads_ahead_from_s3(s3_store: S3Store, fault_proxy: FaultProxy) -> None:
    sampler = BatchIndexSampler(np.arange(12), 4, shuffle=True, seed=2)
    want = [b["cubes"] for b in make_loader(CubeBatchDataset(s3_store.local.path), sampler)]
    dataset = CubeBatchDataset(s3_store.url)
    loader = make_loader(dataset, sampler)  # chooses the core's threads (the reader reopens with them)
    len(dataset)  # open the store (metadata and parameters) before counting chunk GETs
    gets = fault_proxy.gets
    got = [b["cubes"] for b in loader]
    assert sampler.readahead is not None
    assert [torch.equal(g.view(torch.int32), w.view(torch.int32)) for g, w in zip(got, want)] == [True] * 3
    assert fault_proxy.gets - gets == 12  # every sample once: batches 2 and 3 came from the read-ahead
