"""bfloat16 batches written by the core: the same values torch's float32 -> bfloat16 conversion
gives (round to nearest even), in the main process and through DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astrobio import ConfigError
from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader
from astrobio.reader import CubeReader
from conftest import build_fixture


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("bf16") / "s.zarr").path


@pytest.mark.parametrize("normalize", ["per_variable", "per_level", "none"])
def test_bf16_batch_equals_torch_narrowing_of_the_float32_batch(store, normalize):
    reader = CubeReader(store, normalize=normalize)
    idx = [0, 5, 2, 7]
    f32 = reader.read(idx).cubes
    bf16 = reader.read(idx, dtype="bfloat16").cubes
    assert bf16.dtype == np.uint16 and bf16.shape == f32.shape and bf16.flags.c_contiguous
    want = torch.from_numpy(f32).to(torch.bfloat16)
    got = torch.from_numpy(bf16).view(torch.bfloat16)
    assert torch.equal(got, want)  # bit for bit, ties to even included
    assert not torch.equal(got.float(), torch.from_numpy(f32))  # it really is narrower


def test_bf16_into_a_caller_buffer_and_bad_buffers(store):
    reader = CubeReader(store)
    out = np.zeros((2, *reader.sample_shape), np.uint16)
    batch = reader.read([1, 3], out=out, dtype="bfloat16")
    assert batch.cubes is out or np.shares_memory(batch.cubes, out)
    assert torch.equal(torch.from_numpy(out).view(torch.bfloat16), torch.from_numpy(reader.read([1, 3]).cubes).to(torch.bfloat16))
    with pytest.raises(ValueError, match="uint16"):
        reader.read([1, 3], out=np.zeros((2, *reader.sample_shape), np.float32), dtype="bfloat16")
    with pytest.raises(ConfigError, match="float32 or bfloat16"):
        reader.read([1], dtype="float16")


@pytest.mark.parametrize("workers", [0, 2])
def test_bf16_batches_through_the_dataloader(store, workers):
    ds = CubeBatchDataset(store, dtype="bfloat16")
    f32 = CubeBatchDataset(store)
    sampler = BatchIndexSampler(list(range(12)), 4, shuffle=False)
    loader = make_loader(ds, sampler, num_workers=workers, multiprocessing_context="spawn" if workers else None)
    seen = 0
    for batch in loader:
        cubes = batch["cubes"]
        assert cubes.dtype == torch.bfloat16
        want = f32[batch["index"].tolist()]["cubes"].to(torch.bfloat16)
        assert torch.equal(cubes, want)
        seen += len(cubes)
    assert seen == 12
