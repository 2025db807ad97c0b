"""The corruption matrix: each fault on a fresh store raises the right exception naming the
run and chunk, on the read path and in the full scan; nothing returns wrong data silently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

import astrobio
from astrobio import _core

BAD = 5  # sample 5 is in run-1 (runs of 4, 3, 5 samples: 0-3, 4-6, 7-11)


def chunk_file(path: Path, sample: int) -> Path:
    return path / "cubes" / "c" / str(sample) / "0" / "0" / "0" / "0"


def flip_byte(p: Path) -> None:
    f = chunk_file(p, BAD)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))


def truncate(p: Path) -> None:
    f = chunk_file(p, BAD)
    f.write_bytes(f.read_bytes()[:-17])


def delete(p: Path) -> None:
    chunk_file(p, BAD).unlink()


def write_value(value: float):
    def corrupt(p: Path) -> None:
        # Through zarr, so the chunk's checksum is valid and only the value is wrong.
        arr = zarr.open_array(store=str(p / "cubes"), mode="r+")
        arr[BAD, 1, 2, 3, 4] = value
    return corrupt


CHUNK_FAULTS = {
    "bit flip": (flip_byte, "checksum mismatch"),
    "truncated": (truncate, "checksum mismatch|cannot decode"),
    "missing chunk": (delete, "chunk missing"),
    "NaN": (write_value(float("nan")), "not a number"),
    "+Inf": (write_value(float("inf")), "infinite"),
    "-Inf": (write_value(float("-inf")), "infinite"),
    "out of range": (write_value(5000.0), r"5000 outside the valid range \[-1000, 1000\]"),
}


@pytest.mark.parametrize("fault", list(CHUNK_FAULTS))
def test_chunk_fault_fails_the_read_naming_run_and_chunk(store, fault):
    corrupt, reason = CHUNK_FAULTS[fault]
    reader = astrobio.CubeReader(store.path)
    reader.read([0, BAD])  # clean before
    corrupt(store.path)
    with pytest.raises(astrobio.IntegrityError, match=reason) as info:
        astrobio.CubeReader(store.path).read([0, BAD, 2])
    err = info.value
    assert (err.run, err.sample, err.chunk) == ("run-1", BAD, f"cubes/c/{BAD}/0/0/0/0")
    assert "run 'run-1'" in str(err) and f"cubes/c/{BAD}/0/0/0/0" in str(err)
    if fault in ("NaN", "+Inf", "-Inf", "out of range"):
        assert 'variable "var1" level 2' in str(err) and "lat index 3, lon index 4" in str(err)
    # samples around it still read: the fault is local and named, not a blanket failure
    reader.read([0, 1, 2])


@pytest.mark.parametrize("fault", list(CHUNK_FAULTS))
def test_chunk_fault_is_reported_by_the_full_scan(store, fault):
    corrupt, reason = CHUNK_FAULTS[fault]
    corrupt(store.path)
    report = astrobio.open_store(store.path).verify()
    assert not report["ok"] and report["chunks_failed"] == 1 and report["chunks_checked"] == 12
    (failure,) = report["failures"]
    assert (failure["run"], failure["sample"], failure["chunk"]) == ("run-1", BAD, f"cubes/c/{BAD}/0/0/0/0")
    import re
    assert re.search(reason, failure["reason"])


def test_stray_chunk_file_is_reported(store):
    stray = store.path / "cubes" / "c" / "99" / "0" / "0" / "0" / "0"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not a chunk")
    report = _core.verify_store(str(store.path))
    assert not report["ok"] and report["unexpected_files"] == 1 and report["chunks_failed"] == 0
    assert report["failures"][0]["chunk"] == "cubes/c/99/0/0/0/0"


def test_scan_caps_failures_and_sorts_by_sample(store):
    for s in (9, 2, 5):
        chunk_file(store.path, s).unlink()
    report = _core.verify_store(str(store.path), max_failures=2)
    assert report["chunks_failed"] == 3
    assert [f["sample"] for f in report["failures"]] == [2, 5]


def edit_manifest(p: Path, edit) -> None:
    meta_path = p / "zarr.json"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))


MANIFEST_FAULTS = {
    "manifest missing": (lambda m: m["attributes"].pop("astrobio"), astrobio.DataNotFoundError, "no manifest"),
    "manifest incomplete": (lambda m: m["attributes"]["astrobio"].update(complete=False), astrobio.DataNotFoundError, "incomplete manifest"),
    "runs inconsistent": (lambda m: m["attributes"]["astrobio"].update(n_samples=13), astrobio.IntegrityError, "runs cover 12"),
    "stats missing": (lambda m: m["attributes"]["astrobio"].pop("normalization"), astrobio.IntegrityError, "manifest: unreadable"),
    "stats wrong length": (lambda m: m["attributes"]["astrobio"]["normalization"]["cubes"]["per_variable"]["mean"].pop(), astrobio.IntegrityError, "per-variable statistics"),
    "future format": (lambda m: m["attributes"]["astrobio"].update(format_version=2), astrobio.IntegrityError, "not supported"),
}


@pytest.mark.parametrize("fault", list(MANIFEST_FAULTS))
def test_manifest_faults_refuse_to_open(store, fault):
    edit, exc, match = MANIFEST_FAULTS[fault]
    edit_manifest(store.path, edit)
    with pytest.raises(exc, match=match):
        astrobio.open_store(store.path)
    with pytest.raises(exc, match=match):
        astrobio.CubeReader(store.path).read([0])
    with pytest.raises(exc, match=match):
        _core.verify_store(str(store.path))


def test_unparseable_group_metadata(store):
    (store.path / "zarr.json").write_text("{ not json")
    with pytest.raises(astrobio.IntegrityError, match="zarr.json"):
        astrobio.open_store(store.path)


def test_missing_store_names_path_and_fix(tmp_path):
    with pytest.raises(astrobio.DataNotFoundError) as info:
        astrobio.open_store(tmp_path / "absent.zarr")
    msg = str(info.value)
    assert "absent.zarr" in msg and "astrobio datasets build default" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_directory_without_zarr_metadata(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(astrobio.DataNotFoundError, match="zarr.json missing"):
        astrobio.open_store(tmp_path / "empty.zarr")


def test_wrong_dtype_array(store):
    shape = astrobio.open_store(store.path).manifest["sample_shape"]
    zarr.create_array(store=str(store.path / "cubes"), shape=(12, *shape), chunks=(1, *shape), dtype="float64", overwrite=True)
    with pytest.raises(astrobio.IntegrityError, match="expected float32"):
        astrobio.open_store(store.path)


def test_wrong_shape_array(store):
    arr = zarr.open_array(store=str(store.path / "cubes"), mode="r+")
    arr.resize((13, *arr.shape[1:]))
    with pytest.raises(astrobio.IntegrityError, match=r"the manifest says \[12"):
        astrobio.open_store(store.path)


def test_wrong_chunking(store):
    shape = astrobio.open_store(store.path).manifest["sample_shape"]
    zarr.create_array(store=str(store.path / "cubes"), shape=(12, *shape), chunks=(2, *shape), dtype="float32", overwrite=True)
    with pytest.raises(astrobio.IntegrityError, match="one sample per chunk"):
        astrobio.open_store(store.path)


def test_missing_params_array(store):
    import shutil
    shutil.rmtree(store.path / "params")
    with pytest.raises(astrobio.DataNotFoundError, match="no array \"params\""):
        astrobio.open_store(store.path)


def test_corrupt_params_chunk(store):
    f = store.path / "params" / "c" / "0" / "0"
    data = bytearray(f.read_bytes())
    data[3] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(astrobio.IntegrityError, match="checksum mismatch") as info:
        astrobio.open_store(store.path)
    assert info.value.chunk == "params/c/0/0"


def test_params_value_out_of_range(store):
    arr = zarr.open_array(store=str(store.path / "params"), mode="r+")
    arr[8, 1] = 99.0
    with pytest.raises(astrobio.IntegrityError, match="parameter \"p1\" of sample 8 is 99") as info:
        astrobio.open_store(store.path)
    assert info.value.run == "run-2"


def test_digest_detects_changed_data_and_foreign_manifest(store, tmp_path):
    from conftest import build_fixture

    astrobio.open_store(store.path).verify_digest()
    other = build_fixture(tmp_path / "other.zarr", seed=1)
    (store.path / "zarr.json").write_bytes((other.path / "zarr.json").read_bytes())
    with pytest.raises(astrobio.IntegrityError, match="digest"):
        astrobio.open_store(store.path).verify_digest()


def test_first_bad_sample_in_batch_order_is_reported(store):
    for s in (9, 3):
        chunk_file(store.path, s).unlink()
    for _ in range(5):
        with pytest.raises(astrobio.IntegrityError) as info:
            astrobio.CubeReader(store.path, threads=2).read([0, 9, 1, 3])
        assert info.value.sample == 9


def test_value_that_overflows_when_normalized_is_refused(tmp_path):
    variables = [astrobio.Variable("x", "1")]  # no valid range: only finiteness bounds it
    train = np.full((2, 1, 1, 2, 2), 1.0, np.float32)
    train[1] += 1e-3  # std ~5e-4 on the train split
    test = np.full((1, 1, 1, 2, 2), 3.0e38, np.float32)  # finite, but not once scaled by 1/std
    path = astrobio.write_store(tmp_path / "s.zarr", {"a": train, "b": test}, variables=variables,
                                split={"train": ["a"], "test": ["b"]})
    with pytest.raises(astrobio.IntegrityError, match="not finite once normalized") as info:
        astrobio.CubeReader(path).read([0, 2])
    assert (info.value.run, info.value.sample) == ("b", 2)
    np.testing.assert_array_equal(astrobio.CubeReader(path, normalize="none").read([2]).cubes, test)
