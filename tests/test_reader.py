"""read_batch against a numpy reference, output buffers, pickling and parameters."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import astrobio
from astrobio import _core
from astrobio.reader import Normalization

from conftest import build_fixture, reference_batch


@pytest.mark.parametrize("mode", ["per_variable", "per_level", "none"])
def test_batch_equals_numpy_reference(store, mode):
    reader = astrobio.CubeReader(store.path, normalize=mode)
    idx = [5, 0, 11, 5, 3]  # unordered, with a duplicate
    batch = reader.read(idx)
    assert batch.cubes.shape == (5, *store.cubes.shape[1:])
    assert batch.cubes.dtype == np.float32 and batch.cubes.flags.c_contiguous
    np.testing.assert_allclose(batch.cubes, reference_batch(store, idx, mode), rtol=1e-6, atol=1e-6)


def test_normalized_train_split_has_zero_mean_unit_std(store):
    s = astrobio.open_store(store.path)
    x = astrobio.CubeReader(store.path).read(s.samples("train")).cubes
    per_var = x.transpose(1, 0, 2, 3, 4).reshape(x.shape[1], -1)
    np.testing.assert_allclose(per_var.mean(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(per_var.std(axis=1), 1.0, atol=1e-4)


def test_one_and_two_threads_give_identical_bytes(store):
    idx = list(range(12))
    one = _core.BatchReader(str(store.path), "per_level", 1).read_batch(idx)
    two = _core.BatchReader(str(store.path), "per_level", 2).read_batch(idx)
    assert one.tobytes() == two.tobytes()


def test_params_are_normalized_with_train_statistics(store):
    s = astrobio.open_store(store.path)
    norm = s.manifest["normalization"]["params"]
    got = astrobio.CubeReader(store.path).read([0, 11]).params
    raw = store.all_params[[0, 11]]
    expect = (raw - np.float32(norm["mean"])) * (1 / np.asarray(norm["std"])).astype(np.float32)
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-6)
    train = store.all_params[s.samples("train")].astype(np.float64)
    np.testing.assert_allclose(norm["mean"], train.mean(axis=0), rtol=1e-6)


def test_out_buffer_is_filled_in_place_and_zero_copy_into_torch(store):
    torch = pytest.importorskip("torch")
    out_t = torch.empty((4, *store.cubes.shape[1:]), dtype=torch.float32)
    if torch.cuda.is_available():  # the path DataLoader uses: a pinned host buffer
        out_t = out_t.pin_memory()
    out = out_t.numpy()
    batch = astrobio.CubeReader(store.path).read([1, 2, 3, 4], out=out)
    assert batch.cubes is out
    np.testing.assert_allclose(out_t.numpy(), reference_batch(store, [1, 2, 3, 4]), rtol=1e-6, atol=1e-6)
    view = torch.from_numpy(batch.cubes)
    assert view.data_ptr() == out_t.data_ptr()


@pytest.mark.parametrize(
    "make_out, match",
    [
        (lambda s: np.empty((3, *s), np.float32), "shape"),
        (lambda s: np.empty((2, *s), np.float64), "float32"),
        (lambda s: np.empty((2, *s[:-1], 2 * s[-1]), np.float32)[..., ::2], "C-contiguous"),
        (lambda s: np.lib.stride_tricks.as_strided(np.empty((2, *s), np.float32), writeable=False), "writeable"),
        (lambda s: [[0.0]], "float32"),
    ],
)
def test_bad_out_buffers_raise_config_error(store, make_out, match):
    with pytest.raises(astrobio.ConfigError, match=match):
        astrobio.CubeReader(store.path).read([0, 1], out=make_out(store.cubes.shape[1:]))


@pytest.mark.parametrize("index", [-1, 12, 10**12])
def test_out_of_range_indices_raise_sample_index_error(store, index):
    with pytest.raises(astrobio.SampleIndexError, match="out of range"):
        astrobio.CubeReader(store.path).read([0, index])
    assert issubclass(astrobio.SampleIndexError, IndexError)


def test_unknown_normalization_is_a_config_error(store):
    with pytest.raises(astrobio.ConfigError, match="per_variable"):
        astrobio.CubeReader(store.path, normalize="zscore").read([0])


def test_empty_batch_is_allowed(store):
    assert astrobio.CubeReader(store.path).read([]).cubes.shape == (0, *store.cubes.shape[1:])


def test_native_reader_and_wrapper_pickle(store):
    native = _core.BatchReader(str(store.path), "per_level", 1)
    clone = pickle.loads(pickle.dumps(native))
    assert (clone.path, clone.normalize, clone.threads) == (native.path, "per_level", 1)
    assert clone.read_batch([3]).tobytes() == native.read_batch([3]).tobytes()
    wrapper = astrobio.CubeReader(store.path, normalize="none")
    wrapper.read([0])
    clone_w = pickle.loads(pickle.dumps(wrapper))
    assert clone_w._native is None  # reopened lazily in the receiving process
    np.testing.assert_array_equal(clone_w.read([2]).cubes, store.cubes[[2]])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 7)),
    runs=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    mode=st.sampled_from(["per_variable", "per_level", "none"]),
    data=st.data(),
)
def test_property_read_batch_matches_reference(tmp_path_factory, shape, runs, seed, mode, data):
    fx = build_fixture(tmp_path_factory.mktemp("prop") / "s.zarr", shape=shape, run_lengths=tuple(runs), seed=seed)
    n = sum(runs)
    idx = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8))
    got = astrobio.CubeReader(fx.path, normalize=mode, threads=data.draw(st.integers(1, 2))).read(idx).cubes
    np.testing.assert_allclose(got, reference_batch(fx, idx, mode), rtol=1e-6, atol=1e-6)


def _store_with_a_constant_field(path):
    """var1 is constant (std 0 in both modes); var0 level 1 is constant (std 0 per level only)."""
    rng = np.random.default_rng(7)
    runs = []
    for i, t in enumerate((3, 2, 2)):
        cubes = (280.0 + 15.0 * rng.standard_normal((t, 2, 3, 4, 5))).astype(np.float32)
        cubes[:, 0, 1] = 250.0
        cubes[:, 1] = 101325.0
        runs.append((f"run-{i}", cubes, rng.uniform(-5, 5, (t, 2)).astype(np.float32)))
    # the parameter p1 is constant as well
    for _, _, p in runs:
        p[:, 1] = 3.0
    variables = [astrobio.Variable("ta", "K", (100.0, 400.0)), astrobio.Variable("ps", "Pa", (0.0, 2e5))]
    params = [astrobio.Variable("p0", "1", (-50.0, 50.0)), astrobio.Variable("p1", "1", (-50.0, 50.0))]
    astrobio.write_store(path, runs, variables=variables, params=params,
                         split={"train": ["run-0", "run-1"], "test": ["run-2"]},
                         provenance={"source": "test fixture", "kind": "generated"})
    return np.concatenate([c for _, c, _ in runs]), np.concatenate([p for _, _, p in runs])


@pytest.mark.parametrize("mode", ["per_variable", "per_level"])
def test_normalization_is_the_manifests_with_zero_std_as_scale_one(tmp_path, mode):
    path = tmp_path / "const.zarr"
    _store_with_a_constant_field(path)
    stats = astrobio.open_store(path).manifest["normalization"]
    cubes = stats["cubes"][mode]
    mean, std = np.asarray(cubes["mean"], np.float64), np.asarray(cubes["std"], np.float64)
    if mode == "per_variable":
        mean, std = np.repeat(mean[:, None], 3, axis=1), np.repeat(std[:, None], 3, axis=1)
    assert (std == 0).any()  # the case under test: a constant field
    norm = astrobio.CubeReader(path, normalize=mode).normalization()
    assert isinstance(norm, Normalization)
    assert norm.mean.dtype == norm.scale.dtype == np.float64 and norm.mean.shape == (2, 3)
    np.testing.assert_array_equal(norm.mean, mean)
    np.testing.assert_array_equal(norm.scale, np.where(std > 0, std, 1.0))
    p = astrobio.CubeReader(path, normalize=mode).params_normalization()
    np.testing.assert_array_equal(p.mean, stats["params"]["mean"])
    np.testing.assert_array_equal(p.scale, [stats["params"]["std"][0], 1.0])


@pytest.mark.parametrize("mode", ["per_variable", "per_level", "none"])
def test_normalization_round_trips_a_batch_to_the_physical_values(tmp_path, mode):
    path = tmp_path / "const.zarr"
    raw_cubes, raw_params = _store_with_a_constant_field(path)
    reader = astrobio.CubeReader(path, normalize=mode)
    idx = [6, 0, 3, 4]
    batch = reader.read(idx)
    physical = reader.normalization().to_physical(batch.cubes.astype(np.float64))
    assert physical.shape == batch.cubes.shape
    # float32 normalized values carry ~1e-7 relative error; physical fields are O(100-1e5)
    np.testing.assert_allclose(physical, raw_cubes[idx], rtol=2e-6)
    np.testing.assert_array_equal(physical[:, 1], 101325.0)  # the constant field comes back exactly
    params = reader.params_normalization().to_physical(batch.params.astype(np.float64))
    np.testing.assert_allclose(params, raw_params[idx], rtol=1e-6, atol=1e-6)
    if mode == "none":
        assert (reader.normalization().scale == 1).all() and (reader.normalization().mean == 0).all()


def test_normalization_survives_pickling_of_the_reader(store):
    reader = astrobio.CubeReader(store.path, normalize="per_level")
    clone = pickle.loads(pickle.dumps(reader))
    a, b = reader.normalization(), clone.normalization()
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.scale, b.scale)
