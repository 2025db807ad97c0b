"""Local read-ahead without workers (on by default when CUDA is present): the next batch is read
on a background thread while the current one is consumed. Same batches, same order, errors
raised at the batch they belong to, and a dataset that read ahead still goes to workers."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import astrobio
from astrobio.data import MAX_AUTO_DEPTH, BatchIndexSampler, CubeBatchDataset, choose_threads, make_loader

from conftest import build_fixture, reference_batch
from test_corruption import BAD, flip_byte


class _Recorder(CubeBatchDataset):
    """Records which thread read each batch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read_by: dict[tuple[int, ...], str] = {}

    def _read_in_process(self, indices, pinned=False):
        self.read_by[tuple(int(i) for i in indices)] = threading.current_thread().name
        return super()._read_in_process(indices, pinned)

    def threads_of(self, key: tuple[int, ...]) -> str:
        return self.read_by[key]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_read_ahead_gives_the_same_batches_read_on_the_background_thread(store, dtype):
    def epochs(readahead: bool, ds: CubeBatchDataset) -> list[list[tuple[list[int], torch.Tensor]]]:
        sampler = BatchIndexSampler(np.arange(12), 3, shuffle=True, seed=4)
        loader = make_loader(ds, sampler, readahead=readahead, stateful=True)
        out = []
        for epoch in range(2):
            sampler.set_epoch(epoch)
            out.append([(b["index"].tolist(), b["cubes"].clone()) for b in loader])
        return out

    ahead = _Recorder(store.path, dtype=dtype)
    got, want = epochs(True, ahead), epochs(False, CubeBatchDataset(store.path, dtype=dtype))
    assert [[i for i, _ in e] for e in got] == [[i for i, _ in e] for e in want]
    for e_got, e_want in zip(got, want):
        for (idx, a), (_, b) in zip(e_got, e_want):
            assert a.dtype == b.dtype and torch.equal(a, b)
            if dtype == "float32":
                np.testing.assert_allclose(a.numpy(), reference_batch(store, idx), rtol=1e-6, atol=1e-6)
    background = [k for k, name in ahead.read_by.items() if name.startswith("astrobio-readahead")]
    assert len(background) >= 3  # each epoch: every batch after the first was read ahead
    assert not ahead._ahead  # nothing left in flight after full epochs


def test_without_cuda_local_read_ahead_is_off_by_default(store):
    ds = CubeBatchDataset(store.path)
    sampler = BatchIndexSampler(np.arange(4), 2)
    make_loader(ds, sampler)
    assert (sampler.readahead is not None) == torch.cuda.is_available()
    assert ds.pin_ahead == torch.cuda.is_available()


def test_a_corrupt_batch_read_ahead_fails_when_it_is_consumed(store):
    flip_byte(store.path)  # sample BAD's chunk
    batches = [[0, 1], [2, 3], [BAD, 6], [7, 8]]
    sampler = BatchIndexSampler(np.arange(12), 2)
    sampler.epoch_batches = lambda: batches  # type: ignore[method-assign]
    loader = make_loader(CubeBatchDataset(store.path), sampler, readahead=True)
    seen = []
    with pytest.raises(astrobio.IntegrityError, match="checksum mismatch") as err:
        for b in loader:
            seen.append(b["index"].tolist())
    assert seen == batches[:2]  # the batches before it arrived, intact
    assert "run-1" in str(err.value)


def test_a_batch_the_consumer_skips_is_dropped_and_the_rest_still_read(store):
    ds = CubeBatchDataset(store.path)
    for batch in ([0, 1], [2, 3], [4, 5], [6, 7]):
        assert ds.prefetch(batch)
    assert list(ds._ahead) == [(4, 5), (6, 7)]  # at most two in flight
    np.testing.assert_allclose(ds[[6, 7]]["cubes"].numpy(), reference_batch(store, [6, 7]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ds[[0, 1]]["cubes"].numpy(), reference_batch(store, [0, 1]), rtol=1e-6, atol=1e-6)


def test_a_dataset_that_read_ahead_still_goes_to_workers(store):
    ds = CubeBatchDataset(store.path)
    list(make_loader(ds, BatchIndexSampler(np.arange(4), 2), readahead=True))
    assert ds._pool is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._pool is None and not clone._ahead
    loader = make_loader(ds, BatchIndexSampler(np.arange(8), 4), num_workers=2, multiprocessing_context="spawn", timeout=120)
    for b in loader:
        np.testing.assert_allclose(b["cubes"].numpy(), reference_batch(store, b["index"].tolist()), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ several batches ahead, thread choice
@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("ahead") / "fixture.zarr")


def _plain(store, batches: list[list[int]]) -> list[np.ndarray]:
    ds = CubeBatchDataset(store.path, threads=1)
    return [ds[b]["cubes"].numpy().copy() for b in batches]


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 5), depth=st.sampled_from([1, 2, 3, None]), threads=st.sampled_from([None, 1, 2, 3]),
       seed=st.integers(0, 50), dtype=st.sampled_from(["float32", "bfloat16"]))
def test_any_depth_and_thread_count_gives_the_same_batches_in_order(shared_store, batch, depth, threads, seed, dtype):
    sampler = BatchIndexSampler(np.arange(12), batch, shuffle=True, seed=seed)
    ds = CubeBatchDataset(shared_store.path, threads=threads, dtype=dtype)
    loader = make_loader(ds, sampler, readahead=True, depth=depth)
    want_order = sampler.epoch_batches()
    got = [(b["index"].tolist(), b["cubes"].clone()) for b in loader]
    assert [i for i, _ in got] == want_order
    plain = CubeBatchDataset(shared_store.path, threads=1, dtype=dtype)
    for idx, cubes in got:
        assert torch.equal(cubes, plain[idx]["cubes"])
    assert not ds._ahead  # nothing left in flight after a full epoch
    if threads is None:
        assert ds.reader.threads == choose_threads(batch, readahead=True)


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("bad_at", [0, 1, 3])
def test_an_error_read_several_batches_ahead_surfaces_at_its_own_batch(store, depth, bad_at):
    flip_byte(store.path)  # sample BAD's chunk
    batches = [[0, 1], [2, 3], [4, 6], [7, 8], [9, 10]]
    batches.insert(bad_at, [BAD, 11])
    sampler = BatchIndexSampler(np.arange(12), 2)
    sampler.epoch_batches = lambda: batches  # type: ignore[method-assign]
    ds = _Recorder(store.path)
    loader = make_loader(ds, sampler, readahead=True, depth=depth)
    seen = []
    with pytest.raises(astrobio.IntegrityError, match="checksum mismatch"):
        for b in loader:
            seen.append(b["index"].tolist())
    assert seen == batches[:bad_at]  # every batch before it, intact and in order
    for idx in seen:
        np.testing.assert_allclose(ds[idx]["cubes"].numpy(), reference_batch(store, idx), rtol=1e-6, atol=1e-6)
    if bad_at > 0:  # the bad batch was read on a background thread, before the consumer reached it
        assert ds.threads_of((BAD, 11)).startswith("astrobio-readahead")


def test_the_sampler_offers_as_many_later_batches_as_the_depth_asks():
    sampler = BatchIndexSampler(np.arange(10), 2)
    offered: list[list[int]] = []
    sampler.readahead = offered.append
    sampler.readahead_depth = lambda: 3
    handed = list(sampler)
    # each batch offers the next three; a dataset ignores the ones already in flight
    assert offered[:3] == handed[1:4] and offered[3:6] == handed[2:5]
    assert {tuple(b) for b in offered} == {tuple(b) for b in handed[1:]}


def test_the_decided_depth_follows_the_read_and_step_times(store):
    ds = CubeBatchDataset(store.path)
    ds.depth = None
    assert ds.ahead_depth() == 1  # nothing measured yet
    ds._read_s, ds._step_s = 0.030, 0.011  # reads take about three steps
    assert ds.ahead_depth() == 3
    ds._read_s = 1.0
    assert ds.ahead_depth() == MAX_AUTO_DEPTH
    ds._read_s = 0.001
    assert ds.ahead_depth() == 1
    ds.depth = 2  # configured: fixed
    assert ds.ahead_depth() == 2
    with pytest.raises(astrobio.ConfigError):
        make_loader(ds, BatchIndexSampler(np.arange(4), 2), readahead=True, depth=0)


@pytest.mark.parametrize(("cores", "batch", "workers", "ahead", "want"), [
    (16, 32, 0, False, 16), (16, 32, 0, True, 15), (16, 8, 0, True, 8), (16, 32, 2, False, 8),
    (16, 32, 3, False, 5), (2, 32, 4, False, 1), (1, 32, 0, True, 1), (16, 1, 0, False, 1),
])
def test_thread_choice(cores, batch, workers, ahead, want):
    assert choose_threads(batch, workers=workers, readahead=ahead, cores=cores) == want
