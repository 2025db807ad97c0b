"""Block shuffling (`BatchIndexSampler(shuffle_block=)`, `data.shuffle_block`): a sharded store is
read a few shards per batch; the epoch is still a seeded permutation of every sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import astrobio
from astrobio.data import BatchIndexSampler


def test_one_sample_blocks_keep_the_plain_shuffle():
    """shuffle_block=1 is the sampler's original order (runs and their resumes are unchanged)."""
    idx = np.arange(3, 40)
    s = BatchIndexSampler(idx, 4, shuffle=True, seed=9, shuffle_block=1)
    s.set_epoch(2)
    want = idx[np.random.default_rng((9, 2)).permutation(len(idx))]
    assert sum(s.epoch_batches(), []) == want.tolist()


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 120), block=st.integers(2, 16), batch=st.integers(1, 16), seed=st.integers(0, 999),
       start=st.integers(0, 30), epoch=st.integers(0, 3))
def test_block_shuffle_is_a_seeded_permutation_reading_few_blocks_per_batch(n, block, batch, seed, start, epoch):
    idx = np.arange(start, start + n)
    s = BatchIndexSampler(idx, batch, shuffle=True, seed=seed, shuffle_block=block)
    s.set_epoch(epoch)
    batches = s.epoch_batches()
    flat = sum(batches, [])
    assert sorted(flat) == idx.tolist()
    assert batches == s.epoch_batches()  # deterministic for (seed, epoch)
    # the order visits whole blocks one after another: each block's samples are contiguous
    blocks = [i // block for i in flat]
    changes = sum(1 for a, b in zip(blocks, blocks[1:]) if a != b)
    assert changes == len(set(blocks)) - 1
    # so with whole blocks a batch touches at most ceil(batch / block) + 1 of them (a partial
    # block at either end of the indices adds at most one more each)
    partial = (start % block != 0) + ((start + n) % block != 0)
    assert all(len({i // block for i in b}) <= -(-batch // block) + 1 + partial for b in batches)


def test_block_shuffle_changes_with_the_epoch_and_refuses_zero():
    s = BatchIndexSampler(np.arange(64), 8, shuffle=True, seed=1, shuffle_block=8)
    first = s.epoch_batches()
    s.set_epoch(1)
    assert s.epoch_batches() != first
    with pytest.raises(astrobio.ConfigError, match="shuffle_block"):
        BatchIndexSampler(np.arange(4), 2, shuffle_block=0)


def test_training_on_a_sharded_store_shuffles_by_shard(tmp_path):
    from astrobio.train.cli import main
    from astrobio.train.config import TrainConfig
    from astrobio.train.tasks.datacube.data import StoreDataModule
    from train_fixtures import build_climate_fixture

    path = build_climate_fixture(tmp_path / "c.zarr", shard_samples=6)
    store = astrobio.open_store(path)
    cfg = TrainConfig()
    module = StoreDataModule(store, cfg.data, 0)
    assert module.shuffle_block(module._dataset()) == 6
    cfg.data.shuffle_block = 1
    assert module.shuffle_block(module._dataset()) == 1
    out = tmp_path / "run"
    assert main(["--store", str(path), "--output-dir", str(out), "--max-epochs", "1", "--set", "model.options.channels=[8, 8]",
                 "--set", "model.options.hidden=16", "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none",
                 "--set", "trainer.plots=false"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluation"]["test"]["physics_baseline"]["rmse"] > 0
