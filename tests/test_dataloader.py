"""DataLoader workers with fork and spawn after the parent already decoded (the zarrs-python
#171 trap: a rayon pool inherited across fork hangs). Each test has a timeout so a hang fails."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest
import torch

import astrobio
from astrobio import _core
from astrobio.data import BatchIndexSampler, CubeBatchDataset, available_cores, choose_threads, make_loader

from conftest import reference_batch


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_two_workers_after_parent_decode(store, context):
    ds = CubeBatchDataset(store.path)
    ds[[0, 1, 2]]  # the parent decodes first, building the core's pool in this process
    parent_pid = _core.pool_pid()
    assert parent_pid == os.getpid()
    sampler = BatchIndexSampler(np.arange(12), batch_size=4)
    loader = make_loader(ds, sampler, num_workers=2, multiprocessing_context=context, timeout=120)
    seen = []
    for batch in loader:
        idx = batch["index"].tolist()
        np.testing.assert_allclose(batch["cubes"].numpy(), reference_batch(store, idx), rtol=1e-6, atol=1e-6)
        seen.extend(idx)
    assert sorted(seen) == list(range(12))
    assert _core.pool_pid() == parent_pid  # the parent's pool is its own


def _child_read(path: str, queue) -> None:
    reader = _core.BatchReader(path, "per_variable", 2)
    out = reader.read_batch([0, 1, 2, 3])
    queue.put((os.getpid(), _core.pool_pid(), float(out.sum())))


def test_forked_child_builds_its_own_pool(store):
    reader = _core.BatchReader(str(store.path), "per_variable", 2)
    expect = float(reader.read_batch([0, 1, 2, 3]).sum())
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_read, args=(str(store.path), q))
    p.start()
    child_pid, pool_pid, total = q.get(timeout=60)
    p.join(timeout=60)
    assert p.exitcode == 0
    assert pool_pid == child_pid != os.getpid()
    assert total == pytest.approx(expect)


class _ThreadProbe(CubeBatchDataset):
    """Reports the thread count the worker's lazily opened native reader asked for."""

    def __getitem__(self, indices):
        item = super().__getitem__(indices)
        item["threads"] = torch.tensor([self.reader.native.threads])
        return item


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_share_the_cores_between_them(store, workers):
    probe = _ThreadProbe(store.path)
    loader = make_loader(probe, BatchIndexSampler(np.arange(8), 4), num_workers=workers, multiprocessing_context="fork",
                         timeout=60)
    want = max(1, min(4, available_cores() // workers))  # not 1 each: the cores are split among the workers
    assert [int(b["threads"]) for b in loader] == [want, want]
    assert want == choose_threads(4, workers=workers)


def test_an_explicit_thread_count_is_kept_in_workers(store):
    probe = _ThreadProbe(store.path, threads=1)
    loader = make_loader(probe, BatchIndexSampler(np.arange(4), 2), num_workers=1, multiprocessing_context="fork", timeout=60)
    assert [int(b["threads"]) for b in loader] == [1, 1]


def test_sampler_shuffles_deterministically_per_epoch():
    s = BatchIndexSampler(np.arange(10), 3, shuffle=True, seed=7)
    e0 = list(s)
    assert list(s) == e0 and len(e0) == 4 and sorted(sum(e0, [])) == list(range(10))
    s.set_epoch(1)
    assert list(s) != e0
    with pytest.raises(astrobio.ConfigError):
        BatchIndexSampler([1], 0)


class _PidProbe(CubeBatchDataset):
    def __getitem__(self, indices):
        item = super().__getitem__(indices)
        item["pid"] = torch.tensor([os.getpid()])
        return item


@pytest.mark.parametrize("persistent", [None, False])
def test_workers_persist_across_epochs_unless_asked_not_to(store, persistent):
    sampler = BatchIndexSampler(np.arange(8), 2, shuffle=True, seed=1)
    loader = make_loader(_PidProbe(store.path), sampler, num_workers=2, multiprocessing_context="fork", timeout=60,
                         persistent_workers=persistent)
    pids = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(loader)
        assert [b["index"].tolist() for b in batches] == sampler.epoch_batches()
        pids.append({int(b["pid"]) for b in batches})
    assert os.getpid() not in pids[0]
    assert (pids[0] == pids[1]) == (persistent is None)  # restarted workers are new processes
