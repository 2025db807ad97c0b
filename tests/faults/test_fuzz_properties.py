"""Property-based fuzzing of the Python API (hypothesis): whatever bytes a chunk file holds and
however a manifest is edited, astrobio either returns exactly the stored data or raises one of
its own errors naming the place; never another exception, never wrong data, never a crash.

The examples per property default to a CI-sized budget; ASTROBIO_FUZZ_EXAMPLES=N runs more
(the long run recorded in docs/reliability.md). The Rust decode + verify path has its own
cargo-fuzz target (rust/core/fuzz) and a replay of 3000 mutated inputs in `cargo test`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import astrobio
from conftest import build_fixture

from ._util import chunk_file

EXAMPLES = int(os.environ.get("ASTROBIO_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="ASTROBIO_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SAMPLE = 5  # of run-1 (samples 4-6) in the conftest fixture store (runs of 4, 3, 5 samples)
KEY = f"cubes/c/{SAMPLE}/0/0/0/0"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    fx = build_fixture(tmp_path_factory.mktemp("fuzz") / "store.zarr", shape=(2, 2, 4, 4))
    return fx


@pytest.fixture
def work(pristine, tmp_path):
    """A private copy per test; properties restore what they change after each example."""
    dest = tmp_path / "store.zarr"
    shutil.copytree(pristine.path, dest)
    return dest


def _outcome(path: Path) -> tuple[str, np.ndarray | None]:
    """('ok', raw values of SAMPLE) or ('refused', None); anything but an IntegrityError fails."""
    try:
        values = astrobio.CubeReader(path, normalize="none").read([SAMPLE]).cubes[0]
        astrobio.CubeReader(path).read([0, SAMPLE])  # normalized too (overflow is checked there)
    except astrobio.IntegrityError as e:
        assert (e.run, e.sample, e.chunk) == ("run-1", SAMPLE, KEY), str(e)
        return "refused", None
    return "ok", values


def _scan_agrees(path: Path, outcome: str) -> None:
    report = astrobio.open_store(path).verify()
    failed = [f["sample"] for f in report["failures"]]
    assert (failed == [SAMPLE]) if outcome == "refused" else (failed == []), report


@FUZZ
@given(data=st.binary(max_size=600), checksum=st.booleans())
@example(data=b"", checksum=False)
@example(data=b"\x28\xb5\x2f\xfd", checksum=True)  # a bare zstd magic number
def test_any_chunk_bytes_are_refused_or_read_exactly(work, data, checksum):
    f = chunk_file(work, SAMPLE)
    original = f.read_bytes()
    try:
        # `checksum`: forge a valid crc32c so the bytes reach the decoder
        f.write_bytes(data + google_crc32c.value(data).to_bytes(4, "little") if checksum else data)
        outcome, _ = _outcome(work)
        assert outcome == "refused"  # no forged frame here decodes to 2x2x4x4 valid values
        _scan_agrees(work, outcome)
    finally:
        f.write_bytes(original)


finite = st.floats(width=32, allow_nan=False, allow_infinity=False)
special = st.sampled_from([float("nan"), float("inf"), float("-inf"), 1000.0, -1000.0, 1000.0001, 3.0e38, -0.0, 1e-45])


@FUZZ
@given(values=st.lists(st.one_of(finite, special), min_size=64, max_size=64))
def test_any_stored_values_are_refused_or_read_exactly(work, pristine, values):
    """Valid chunks (written through zarr with the array's own codecs) holding arbitrary
    values: read back bit for bit when every value is finite and inside [-1000, 1000], refused
    otherwise, and the full scan agrees."""
    arr = zarr.open_array(store=str(work / "cubes"), mode="r+")
    original = chunk_file(work, SAMPLE).read_bytes()
    x = np.asarray(values, np.float32).reshape(arr.shape[1:])
    try:
        arr[SAMPLE] = x
        outcome, got = _outcome(work)
        valid = bool(np.isfinite(x).all() and (np.abs(x) <= 1000.0).all())
        # (the fixture's spreads are a few units: no valid value overflows once normalized)
        assert outcome == ("ok" if valid else "refused"), x
        if outcome == "ok":
            assert got.tobytes() == x.tobytes()  # exactly what was stored, bit for bit
        _scan_agrees(work, outcome)
    finally:
        chunk_file(work, SAMPLE).write_bytes(original)


def _paths(node, prefix=()):
    """Every (path) into the manifest's JSON tree."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:4]):
            yield from _paths(v, (*prefix, i))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=8,
)


@FUZZ
@given(data=st.data())
def test_any_manifest_edit_is_refused_or_harmless(work, pristine, data):
    """One value of the manifest replaced by arbitrary JSON (or removed): opening, reading and
    the digest check either work or raise an astrobio error. When they all work, the data read
    is the stored data."""
    meta_path = work / "zarr.json"
    original = meta_path.read_text()
    meta = json.loads(original)
    manifest = meta["attributes"]["astrobio"]
    paths = [p for p in _paths(manifest) if p]
    path = data.draw(st.sampled_from(paths), label="path")
    edited = copy.deepcopy(manifest)
    parent = edited
    for k in path[:-1]:
        parent = parent[k]
    if data.draw(st.booleans(), label="remove") and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values, label="value")
    meta["attributes"]["astrobio"] = edited
    try:
        meta_path.write_text(json.dumps(meta))
        try:
            store = astrobio.open_store(work)
            store.samples("train")
            batch = astrobio.CubeReader(work, normalize="none").read(list(range(store.n_samples)))
            store.verify()
            store.verify_digest()
        except astrobio.AstrobioError:
            return
        # accepted: the edit must not have changed what is read
        np.testing.assert_array_equal(batch.cubes, pristine.cubes)
    finally:
        meta_path.write_text(original)


# Found by the long run of the property above (ASTROBIO_FUZZ_EXAMPLES=2000): a malformed split
# section opened without complaint and then failed with KeyError/TypeError. Each is now an
# IntegrityError when the store is opened.
SPLIT_FINDINGS = {
    "split removed": (lambda m: m.pop("split"), "split must map train/val/test to run ids, got NoneType"),
    "split is a list": (lambda m: m.update(split=[None, None]), "split must map train/val/test to run ids, got list"),
    "split of None": (lambda m: m["split"].update(train=None), "split 'train' must be a list of run ids"),
    "run id a list": (lambda m: m["split"].update(train=[["run-0"]]), "split 'train' must be a list of run ids"),
    "unknown run": (lambda m: m["split"].update(test=["run-9"]), "split 'test' names run 'run-9', which is not in the store"),
    "run in two splits": (lambda m: m["split"].update(test=["run-0"]), "run 'run-0' is in both the 'train' and 'test' splits"),
    "unknown split name": (lambda m: m["split"].update(holdout=[]), "unknown split 'holdout'"),
}


@pytest.mark.parametrize("finding", list(SPLIT_FINDINGS))
def test_malformed_split_sections_are_integrity_errors(work, finding):
    edit, message = SPLIT_FINDINGS[finding]
    meta = json.loads((work / "zarr.json").read_text())
    edit(meta["attributes"]["astrobio"])
    (work / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(astrobio.IntegrityError, match=f"manifest: {message}"):
        astrobio.open_store(work)
