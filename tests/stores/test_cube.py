"""The store writer and opener: manifest contents, statistics, splits, refusals, atomicity."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import astrobio
from astrobio._stats import Moments

VARS = [astrobio.Variable("ta", "K", (100.0, 400.0)), astrobio.Variable("hus", "kg/kg", (0.0, None))]


def cubes(t=2, value=250.0):
    x = np.full((t, 2, 3, 4, 5), value, np.float32)
    x[:, 1] = 0.01
    return x


def test_manifest_records_schema_runs_split_stats_provenance(store):
    s = astrobio.open_store(store.path)
    m = s.manifest
    assert m["format"] == "astrobio.store" and m["format_version"] == 1 and m["complete"] is True
    assert s.n_samples == 12 and s.sample_shape == (3, 4, 8, 16)
    assert [(r.id, r.start, r.count) for r in s.runs] == [("run-0", 0, 4), ("run-1", 4, 3), ("run-2", 7, 5)]
    assert s.split == {"train": ["run-0", "run-1"], "val": [], "test": ["run-2"]}
    assert m["normalization"]["scope"] == "train"
    assert m["provenance"]["source"] == "test fixture" and "zarr" in m["provenance"]["tools"]
    assert m["content_digest"].startswith("sha256:") and set(m["digests"]) == {"cubes", "params"}
    x = store.cubes.astype(np.float64)
    pv = m["stats"]["cubes"]["per_variable"]
    np.testing.assert_allclose(pv["mean"], x.mean(axis=(0, 2, 3, 4)), rtol=1e-9)
    np.testing.assert_allclose(pv["std"], x.std(axis=(0, 2, 3, 4)), rtol=1e-9)
    np.testing.assert_allclose(pv["min"], x.min(axis=(0, 2, 3, 4)))
    np.testing.assert_allclose(pv["max"], x.max(axis=(0, 2, 3, 4)))
    assert pv["nan_count"] == [0, 0, 0]
    train = x[s.samples("train")]
    pl = m["normalization"]["cubes"]["per_level"]
    np.testing.assert_allclose(pl["mean"], train.mean(axis=(0, 3, 4)), rtol=1e-9)
    np.testing.assert_allclose(pl["std"], train.std(axis=(0, 3, 4)), rtol=1e-9)


def test_store_is_readable_by_plain_zarr(store):
    import zarr

    g = zarr.open_group(str(store.path), mode="r")
    np.testing.assert_array_equal(g["cubes"][:], store.cubes)
    np.testing.assert_array_equal(g["params"][:], store.all_params)
    assert g["cubes"].metadata.dimension_names == ("sample", "variable", "level", "lat", "lon")


@pytest.mark.parametrize("compression", ["blosc-lz4", "blosc-zstd", "zstd"])
def test_every_compression_reads_back_the_same_through_zarr_and_the_core(tmp_path, compression):
    import zarr

    from astrobio import _core

    x = cubes(3)
    x[:, 0] += np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5) * 0.5  # not constant
    path = astrobio.write_store(tmp_path / "s.zarr", {"r": x}, variables=VARS, compression=compression)
    arr = zarr.open_array(store=str(path / "cubes"), mode="r")
    names = [c["name"] for c in json.loads((path / "cubes" / "zarr.json").read_text())["codecs"]]
    assert names == ["bytes", "zstd" if compression == "zstd" else "blosc", "crc32c"]
    np.testing.assert_array_equal(arr[:], x)
    raw = _core.BatchReader(str(path), "none", 1).read_batch([2, 0, 1])
    np.testing.assert_array_equal(raw, x[[2, 0, 1]])


def test_default_compression_is_shuffled_lz4_and_unknown_ones_are_refused(tmp_path):
    path = astrobio.write_store(tmp_path / "s.zarr", {"r": cubes(1)}, variables=VARS)
    codecs = json.loads((path / "cubes" / "zarr.json").read_text())["codecs"]
    assert codecs[1]["name"] == "blosc" and codecs[1]["configuration"]["cname"] == "lz4"
    assert codecs[1]["configuration"]["shuffle"] == "shuffle"
    with pytest.raises(astrobio.ConfigError, match="unknown compression 'lzma'"):
        astrobio.write_store(tmp_path / "t.zarr", {"r": cubes(1)}, variables=VARS, compression="lzma")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # no temporary left behind


def test_samples_by_split_and_empty_split_refused(store):
    s = astrobio.open_store(store.path)
    assert s.samples("test").tolist() == list(range(7, 12))
    with pytest.raises(astrobio.DataNotFoundError, match="split 'val' of the store has no runs"):
        s.samples("val")
    with pytest.raises(astrobio.ConfigError, match="unknown split"):
        s.samples("holdout")


def test_each_sample_belongs_to_its_run(store):
    s = astrobio.open_store(store.path)
    assert [s.run_of(i).id for i in range(12)] == ["run-0"] * 4 + ["run-1"] * 3 + ["run-2"] * 5
    with pytest.raises(astrobio.ConfigError, match="sample 12 is outside"):
        s.run_of(12)
    assert s.run_positions([11, 0, 5, 4, 7]).tolist() == [2, 0, 1, 1, 2]
    with pytest.raises(astrobio.ConfigError, match="sample -1 is outside"):
        s.run_positions([3, -1])


@pytest.mark.parametrize(
    "split, match",
    [
        ({"train": ["a"], "test": ["a"]}, "both"),
        ({"train": ["zzz"]}, "not in the store"),
        ({"holdout": ["a"]}, "unknown split"),
    ],
)
def test_bad_splits_are_refused(tmp_path, split, match):
    with pytest.raises(astrobio.ConfigError, match=match):
        astrobio.write_store(tmp_path / "s.zarr", {"a": cubes(), "b": cubes()}, variables=VARS, split=split)
    assert not (tmp_path / "s.zarr").exists()
    assert os.listdir(tmp_path) == []  # no temporary left behind


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ".hidden", "", "x" * 200, "sp ace"])
def test_unsafe_run_ids_are_refused(tmp_path, run_id):
    with pytest.raises(astrobio.ConfigError, match="run id"):
        astrobio.write_store(tmp_path / "s.zarr", {run_id: cubes()}, variables=VARS)


@pytest.mark.parametrize(
    "value, match",
    [(float("nan"), "not a number"), (float("inf"), "infinite"), (500.0, r"outside the valid range \[100.0, 400.0\]")],
)
def test_writer_refuses_bad_values_naming_run_and_sample(tmp_path, value, match):
    bad = cubes(3)
    bad[2, 0, 1, 2, 3] = value
    with pytest.raises(astrobio.IntegrityError, match=match) as info:
        astrobio.write_store(tmp_path / "s.zarr", [("ok", cubes(2), None), ("bad", bad, None)], variables=VARS)
    assert (info.value.run, info.value.sample) == ("bad", 4)
    assert os.listdir(tmp_path) == []


def test_writer_shape_and_param_checks(tmp_path):
    with pytest.raises(astrobio.ConfigError, match=r"T, V, L, H, W"):
        astrobio.write_store(tmp_path / "s.zarr", {"a": np.zeros((2, 2, 3, 4))}, variables=VARS)
    with astrobio.StoreWriter(tmp_path / "w.zarr", variables=VARS, sample_shape=(2, 3, 4, 5)) as w:
        with pytest.raises(astrobio.ConfigError, match=r"expected \[T>0"):
            w.add_run("a", np.zeros((2, 2, 3, 4, 6), np.float32))
    with pytest.raises(astrobio.ConfigError, match="variables given"):
        astrobio.write_store(tmp_path / "s.zarr", {"a": cubes()}, variables=VARS[:1])
    with pytest.raises(astrobio.ConfigError, match="pass params"):
        astrobio.write_store(tmp_path / "s.zarr", {"a": cubes()}, variables=VARS, params=[astrobio.Variable("p", "1")])
    with pytest.raises(astrobio.ConfigError, match="at least one run"):
        astrobio.write_store(tmp_path / "s.zarr", {}, variables=VARS)


def test_failed_rewrite_keeps_the_previous_store(tmp_path):
    path = tmp_path / "s.zarr"
    astrobio.write_store(path, {"a": cubes(2, 250.0)}, variables=VARS)
    before = (path / "zarr.json").read_bytes()
    with pytest.raises(RuntimeError, match="killed"):
        with astrobio.StoreWriter(path, variables=VARS, sample_shape=(2, 3, 4, 5)) as w:
            w.add_run("b", cubes(3, 300.0))
            raise RuntimeError("killed mid-ingest")
    assert (path / "zarr.json").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.zarr"]
    assert astrobio.CubeReader(path, normalize="none").read([1]).cubes[0, 0, 0, 0, 0] == 250.0


def test_rewrite_replaces_atomically_and_is_deterministic(tmp_path):
    path = tmp_path / "s.zarr"
    astrobio.write_store(path, {"a": cubes(2, 250.0)}, variables=VARS)
    d1 = astrobio.open_store(path).manifest["content_digest"]
    astrobio.write_store(path, {"a": cubes(2, 260.0)}, variables=VARS)
    assert astrobio.CubeReader(path, normalize="none").read([0]).cubes[0, 0, 0, 0, 0] == 260.0
    assert astrobio.open_store(path).manifest["content_digest"] != d1
    astrobio.write_store(path, {"a": cubes(2, 250.0)}, variables=VARS)
    assert astrobio.open_store(path).manifest["content_digest"] == d1  # same inputs, same digest
    assert sorted(os.listdir(tmp_path)) == ["s.zarr"]


def test_uncommitted_writer_leaves_nothing(tmp_path):
    with astrobio.StoreWriter(tmp_path / "s.zarr", variables=VARS, sample_shape=(2, 3, 4, 5)) as w:
        w.add_run("a", cubes())
    assert os.listdir(tmp_path) == []


def test_manifest_is_plain_json_in_group_attributes(store):
    meta = json.loads((store.path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["node_type"] == "group"
    assert meta["attributes"]["astrobio"]["n_samples"] == 12


@settings(max_examples=50, deadline=None)
@given(
    blocks=st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=20), min_size=1, max_size=5
    )
)
def test_streaming_moments_match_numpy(blocks):
    m = Moments((1,))
    for b in blocks:
        m.update(np.asarray(b, np.float32).reshape(-1, 1), axes=(0,))
    allv = np.concatenate([np.asarray(b, np.float32) for b in blocks]).astype(np.float64)
    assert m.count[0] == len(allv)
    np.testing.assert_allclose(m.mean[0], allv.mean(), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(m.std[0], allv.std(), rtol=1e-6, atol=1e-3)
    assert m.min[0] == allv.min() and m.max[0] == allv.max()


def test_error_hierarchy():
    for cls, std in [
        (astrobio.IntegrityError, ValueError),
        (astrobio.DataNotFoundError, FileNotFoundError),
        (astrobio.ConfigError, ValueError),
        (astrobio.DependencyError, ImportError),
        (astrobio.SampleIndexError, IndexError),
    ]:
        assert issubclass(cls, astrobio.AstrobioError) and issubclass(cls, std)
    e = astrobio.IntegrityError("checksum mismatch", run="r", sample=3, chunk="cubes/c/3/0/0/0/0", path="/s")
    assert str(e) == "/s, run 'r', sample 3, chunk 'cubes/c/3/0/0/0/0': checksum mismatch"
