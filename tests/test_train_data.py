"""The sampler's DDP sharding and resumable state, and the stateful loader (no training)."""

from __future__ import annotations

import numpy as np
import pytest

import astrobio
from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader


def test_ddp_shards_cover_the_epoch_and_have_equal_length():
    idx = np.arange(23)
    full = BatchIndexSampler(idx, 4, shuffle=True, seed=3)
    full.set_epoch(2)
    ranks = [BatchIndexSampler(idx, 4, shuffle=True, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(2)
    shards = [list(s) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == len(ranks[0]) == 3  # 6 batches -> 3 each
    assert shards[0] + shards[1] != list(full)
    assert sorted(sum(shards[0] + shards[1], [])) == sorted(sum(list(full), []))
    assert shards[0] == list(full)[0::2] and shards[1] == list(full)[1::2]
    # 5 batches over 2 ranks: padded by wrapping for training, uneven without padding
    padded = [list(BatchIndexSampler(np.arange(20), 4, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(padded[0]) == len(padded[1]) == 3 and padded[0][-1] == [16, 17, 18, 19] and padded[1][-1] == [0, 1, 2, 3]
    uneven = [list(BatchIndexSampler(np.arange(20), 4, num_replicas=2, rank=r, pad=False)) for r in (0, 1)]
    assert [len(u) for u in uneven] == [3, 2] and sorted(sum(uneven[0] + uneven[1], [])) == list(range(20))
    with pytest.raises(astrobio.ConfigError, match="rank 2"):
        BatchIndexSampler(idx, 4, num_replicas=2, rank=2)


def test_stateful_loader_resumes_mid_epoch_with_the_same_batches(tmp_path):
    from conftest import build_fixture

    fx = build_fixture(tmp_path / "s.zarr", run_lengths=(5, 5, 4))
    ds = CubeBatchDataset(fx.path)
    sampler = BatchIndexSampler(np.arange(14), 3, shuffle=True, seed=1)
    loader = make_loader(ds, sampler, stateful=True)
    sampler.set_epoch(4)
    it = iter(loader)
    seen = [next(it)["index"].tolist() for _ in range(2)]
    state = loader.state_dict()
    assert state == {"seed": 1, "epoch": 4, "start": 2, "rank": 0, "num_replicas": 1}
    rest = [b["index"].tolist() for b in it]

    fresh_sampler = BatchIndexSampler(np.arange(14), 3, shuffle=True, seed=1)
    fresh = make_loader(CubeBatchDataset(fx.path), fresh_sampler, stateful=True)
    fresh.load_state_dict(state)
    fresh_sampler.set_epoch(4)  # what Lightning does before iterating
    assert [b["index"].tolist() for b in fresh] == rest
    assert len(seen) + len(rest) == len(sampler)
    fresh_sampler.set_epoch(5)  # the skip applied to one pass only
    assert len([b for b in fresh]) == len(sampler)
    with pytest.raises(astrobio.ConfigError, match="seed 1"):
        BatchIndexSampler(np.arange(14), 3, seed=2).load_state_dict(state)


def test_stateful_loader_counts_consumed_batches_not_worker_prefetch(tmp_path):
    from conftest import build_fixture

    fx = build_fixture(tmp_path / "s.zarr", run_lengths=(6, 6, 4))

    def make():
        return make_loader(CubeBatchDataset(fx.path), BatchIndexSampler(np.arange(16), 2, shuffle=True, seed=5),
                           stateful=True, num_workers=2, multiprocessing_context="fork", timeout=60)

    loader = make()
    it = iter(loader)
    first = [next(it)["index"].tolist() for _ in range(3)]  # the workers have prefetched further ahead
    state = loader.state_dict()
    assert state["start"] == 3
    rest = [b["index"].tolist() for b in it]
    resumed = make()
    resumed.load_state_dict(state)
    assert [b["index"].tolist() for b in resumed] == rest and len(first + rest) == 8


def test_training_batches_can_be_bfloat16_with_a_deeper_read_ahead_and_validation_stays_float32(tmp_path):
    import torch

    from astrobio.train.config import TrainConfig
    from astrobio.train.tasks.datacube.data import StoreDataModule
    from train_fixtures import build_climate_fixture

    store = astrobio.open_store(build_climate_fixture(tmp_path / "c.zarr"))
    cfg = TrainConfig()
    cfg.data.batch_dtype, cfg.data.readahead_depth, cfg.data.threads = "bfloat16", 3, 1
    cfg.validate()
    module = StoreDataModule(store, cfg.data, 0)
    train = module.train_dataloader()
    train.sampler.set_epoch(0)
    got = list(train)
    plain = CubeBatchDataset(store.path)
    for b in got:
        assert b["cubes"].dtype == torch.bfloat16
        assert torch.equal(b["cubes"], plain[b["index"].tolist()]["cubes"].to(torch.bfloat16))  # the core rounds as torch does
    assert [b["index"].tolist() for b in got] == train.sampler.epoch_batches()
    assert all(b["cubes"].dtype == torch.float32 for b in module.val_dataloader())
    for key, bad in (("readahead_depth", 0), ("batch_dtype", "float16")):
        wrong = TrainConfig()
        setattr(wrong.data, key, bad)
        with pytest.raises(astrobio.ConfigError, match=f"data.{key}"):
            wrong.validate()
