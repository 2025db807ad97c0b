"""Local read-ahead without workers (on by default when CUDA is present): the next batch is read
on a background thread while the current one is consumed. Same batches, same order, errors
raised at the batch they belong to, and a dataset that read ahead still goes to workers."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import torch

import astrobio
from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader

from conftest import reference_batch
from test_corruption import BAD, flip_byte


class _Recorder(CubeBatchDataset):
    """Records which thread read each batch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.threads: dict[tuple[int, ...], str] = {}

    def _read_in_process(self, indices, pinned=False):
        self.threads[tuple(int(i) for i in indices)] = threading.current_thread().name
        return super()._read_in_process(indices, pinned)


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
    background = [k for k, name in ahead.threads.items() if name.startswith("astrobio-readahead")]
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
