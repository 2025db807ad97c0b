"""Batches from DataLoader workers travel in shared memory written by the core, pooled per worker
(astrobio._shm): every batch equals the reference whether the consumer drops each batch (buffers
are reused), keeps every batch, or keeps only a view of each (buffers must not be reused while
any of it is alive); pin_memory works with it, and the pinned path is taken only with CUDA."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from astrobio import _shm
from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader

from conftest import reference_batch


class CountingDataset(CubeBatchDataset):
    """Records, per worker, how many shared buffers the pool had to allocate."""

    def __init__(self, path: Path, log: Path) -> None:
        super().__init__(path)
        self.log = log

    def __getitem__(self, indices):
        out = super().__getitem__(indices)
        pool = _shm._pool
        if pool is not None:
            (self.log / f"w{os.getpid()}.json").write_text(json.dumps({"allocations": pool.allocations}))
        return out


@pytest.fixture(autouse=True)
def count_allocations(monkeypatch):
    """The pool counts its allocations (inherited by forked workers)."""
    take = _shm._Pool.take

    def counted(self, nbytes):
        before = [b for b in self.buffers]
        slot, storage = take(self, nbytes)
        self.allocations = getattr(self, "allocations", 0) + (slot is None or before[slot] is not storage)
        return slot, storage

    monkeypatch.setattr(_shm._Pool, "take", counted)


def loader(ds, n: int, batch_size: int = 3, **kw):
    sampler = BatchIndexSampler(np.arange(n), batch_size=batch_size, shuffle=True, seed=0)
    return make_loader(ds, sampler, num_workers=2, multiprocessing_context="fork", timeout=120, **kw)


def allocations(log: Path) -> int:
    return sum(json.loads(p.read_text())["allocations"] for p in log.glob("w*.json"))


def test_dropped_batches_are_reused_and_exact(store, tmp_path):
    ds = CountingDataset(store.path, tmp_path)
    n = store.cubes.shape[0]
    batches = 0
    for epoch in range(2):
        dl = loader(ds, n, batch_size=1)
        dl.sampler.set_epoch(epoch)
        for b in dl:
            idx = b["index"].tolist()
            np.testing.assert_allclose(b["cubes"].numpy(), reference_batch(store, idx), rtol=1e-6, atol=1e-6)
            batches += 1
            del b
    # each epoch starts fresh workers (persistent_workers=False); in each, a worker's pool fills
    # up to torch's prefetch depth (2) plus the batch being consumed, then only reuses
    assert batches == 2 * n and allocations(tmp_path) <= 2 * 2 * 4, (allocations(tmp_path), batches)


def test_batches_held_by_the_consumer_are_never_overwritten(store, tmp_path):
    ds = CountingDataset(store.path, tmp_path)
    n = store.cubes.shape[0]
    dl = loader(ds, n)
    held, views = [], []
    for i, b in enumerate(dl):
        if i % 2:
            held.append((b["index"].tolist(), b["cubes"]))  # the whole batch
        else:
            views.append((b["index"].tolist()[1:2], b["cubes"][1:2].numpy()))  # only a numpy view of one sample
        del b
    for idx, cubes in held:
        np.testing.assert_allclose(cubes.numpy(), reference_batch(store, idx), rtol=1e-6, atol=1e-6)
    for idx, view in views:
        np.testing.assert_allclose(view, reference_batch(store, idx), rtol=1e-6, atol=1e-6)
    assert allocations(tmp_path) == len(held) + len(views)  # nothing reused while held


def test_pin_memory_requested_works_and_pins_only_with_cuda(store):
    ds = CubeBatchDataset(store.path)
    dl = loader(ds, 9, pin_memory=True)
    it = iter(dl)
    assert it._pin_memory == torch.cuda.is_available()
    for b in it:
        np.testing.assert_allclose(b["cubes"].numpy(), reference_batch(store, b["index"].tolist()), rtol=1e-6, atol=1e-6)
        assert b["cubes"].is_pinned() == torch.cuda.is_available()
    assert make_loader(ds, BatchIndexSampler(np.arange(3), batch_size=3)).pin_memory == torch.cuda.is_available()


def test_the_main_process_reads_into_private_memory(store):
    b = CubeBatchDataset(store.path)[[0, 1]]
    assert isinstance(b["cubes"], torch.Tensor) and not b["cubes"].is_shared()
