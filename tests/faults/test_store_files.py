"""Loader hardening as a class (hypothesis): stores whose files are replaced by what is not a
regular file of the store, and manifests whose numbers are mutated. Whatever is generated,
opening, reading, the full scan and the digest check either work and return the stored data, or
raise one of astrobio's errors naming the path or the key; never another exception, never a
hang (a FIFO opened for reading would block until a writer came: the guard below turns a hang
into a failure with a traceback), never a crash.

The store's file rule and symlink policy are in docs/store-format.md; the counts in
docs/reliability.md.
"""

from __future__ import annotations

import copy
import faulthandler
import json
import math
import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import astrobio
import astrobio.stores._group
import astrobio.stores.cube
from astrobio.stores.table import COLUMNS, open_table, write_table
from conftest import build_fixture

EXAMPLES = int(os.environ.get("ASTROBIO_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="ASTROBIO_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HANG_GUARD_S = 120


@pytest.fixture(autouse=True)
def no_hang():
    """A read that blocks fails the run with every thread's traceback instead of hanging CI."""
    faulthandler.dump_traceback_later(HANG_GUARD_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("files") / "store.zarr", shape=(2, 2, 4, 4))


TARGETS = ["zarr.json", "cubes/zarr.json", "params/zarr.json", "cubes/c/5/0/0/0/0", "params/c/0/0"]
KINDS = ["directory", "fifo", "socket", "link-outside", "link-device", "dangling-link", "link-loop", "link-inside",
         "linked-store-root"]


def replace(store: Path, target: str, kind: str, outside: Path) -> Path:
    """Put `kind` in place of `target`; returns the path to open the store by."""
    path = store / target
    if kind == "linked-store-root":  # the store reached through a link: allowed
        alias = store.parent / "alias.zarr"
        alias.symlink_to(store)
        return alias
    keep = store / "_kept"  # inside the store, outside every array (no digest or scan covers it)
    keep.mkdir(exist_ok=True)
    moved = keep / target.replace("/", "_")
    path.rename(moved)
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    elif kind == "link-outside":
        shutil.copy(moved, outside)
        path.symlink_to(outside)
    elif kind == "link-device":
        path.symlink_to("/dev/zero")
    elif kind == "dangling-link":
        path.symlink_to(path.with_name("nowhere"))
    elif kind == "link-loop":
        path.symlink_to(path.name)
    elif kind == "link-inside":  # a link to the same bytes inside the store: followed
        path.symlink_to(os.path.relpath(moved, path.parent))
    return store


def exercise(path: Path, pristine) -> np.ndarray:
    store = astrobio.open_store(path)
    cubes = astrobio.CubeReader(path, normalize="none").read(list(range(store.n_samples))).cubes
    report = store.verify()
    if not report["ok"]:
        first = report["failures"][0]
        raise astrobio.IntegrityError(first["reason"], chunk=first["chunk"])
    store.verify_digest()
    return cubes


@FUZZ
@given(target=st.sampled_from(TARGETS), kind=st.sampled_from(KINDS))
@example(target="cubes/c/5/0/0/0/0", kind="fifo")
@example(target="zarr.json", kind="fifo")
def test_only_regular_files_of_the_store_are_read(pristine, target, kind):
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.zarr"
        shutil.copytree(pristine.path, store)
        path = replace(store, target, kind, Path(tmp) / "outside")
        allowed = kind in ("link-inside", "linked-store-root")
        try:
            cubes = exercise(path, pristine)
        except astrobio.AstrobioError as e:
            assert not allowed, f"{kind} in place of {target} is allowed, got {e}"
            msg = str(e)
            if kind == "dangling-link":
                assert "missing" in msg or "unreadable" in msg, msg
            else:
                assert ("not a regular file" in msg or "outside the store" in msg), msg
                assert target in msg or kind == "link-outside" and "outside" in msg, msg
            return
        assert allowed, f"{kind} in place of {target} was read"
        np.testing.assert_array_equal(cubes, pristine.cubes)


def test_a_fifo_chunk_is_refused_at_once_with_its_place(pristine, tmp_path):
    store = tmp_path / "s.zarr"
    shutil.copytree(pristine.path, store)
    chunk = store / "cubes/c/5/0/0/0/0"
    chunk.unlink()
    os.mkfifo(chunk)
    with pytest.raises(astrobio.IntegrityError) as info:
        astrobio.CubeReader(store).read([4, 5])
    assert (info.value.run, info.value.sample, info.value.chunk) == ("run-1", 5, "cubes/c/5/0/0/0/0")
    assert info.value.reason == "not a regular file (a FIFO)"
    report = astrobio.open_store(store).verify()
    assert [(f["sample"], f["reason"]) for f in report["failures"]] == [(5, "not a regular file (a FIFO)")]
    with pytest.raises(astrobio.IntegrityError, match=r"chunk 'cubes/c/5/0/0/0/0': not a regular file \(a FIFO\)"):
        astrobio.open_store(store).verify_digest()


@pytest.mark.parametrize("inside", [True, False])
def test_an_array_directory_linked_elsewhere(pristine, tmp_path, inside):
    """`cubes/` itself a link: followed to a copy inside the store, refused to one outside."""
    store = tmp_path / "s.zarr"
    shutil.copytree(pristine.path, store)
    target = (store / "_kept" / "cubes") if inside else (tmp_path / "elsewhere")
    target.parent.mkdir(exist_ok=True)
    (store / "cubes").rename(target)
    (store / "cubes").symlink_to(target)
    if inside:
        np.testing.assert_array_equal(exercise(store, pristine), pristine.cubes)
        return
    with pytest.raises(astrobio.IntegrityError, match="a symbolic link leading outside the store"):
        astrobio.open_store(store)
    with pytest.raises(astrobio.IntegrityError, match="a symbolic link leading outside the store"):
        astrobio.stores.cube.check_digests(store, astrobio.stores._group.read_group_manifest(store), arrays=("cubes", "params"))


def test_table_stores_follow_the_same_rule(tmp_path):
    """Tables and graphs are read by zarr-python: the same rule is checked before it opens a file
    (read_array), with and without the digest check."""
    cols = {c.name: (["a", "b"] if c.dtype == "string" else [1.0, 2.0]) for c in COLUMNS}
    table = write_table(tmp_path / "t.zarr", cols, described={"schema": "test", "credit": "", "source_notes": ""},
                        provenance={"kind": "test"})
    chunk = table / "pl_rade" / "c" / "0"
    chunk.unlink()
    os.mkfifo(chunk)
    for verify in (True, False):
        with pytest.raises(astrobio.IntegrityError, match=r"chunk 'pl_rade/c/0': not a regular file \(a FIFO\)"):
            open_table(table, verify=verify)
    (table / "zarr.json").rename(table / "zarr.json.orig")
    (table / "zarr.json").mkdir()
    with pytest.raises(astrobio.IntegrityError, match=r"chunk 'zarr.json': not a regular file \(a directory\)"):
        open_table(table)


# ---- mutated manifest numbers ----

def _numeric_paths(node, prefix=()):
    if isinstance(node, bool):
        return
    if isinstance(node, (int, float)):
        yield prefix
    elif isinstance(node, dict):
        for k, v in node.items():
            if k != "provenance":
                yield from _numeric_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _numeric_paths(v, prefix + (i,))


ABSURD = st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, -1e-320, 1e308, 2**63, 2**64 + 5, -(2**63), 0.5, 1e-300, 3])


@FUZZ
@given(data=st.data())
@example(data=None)  # replaced below: the NaN standard deviation
def test_any_absurd_number_in_the_manifest_is_refused_or_harmless(pristine, data):
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.zarr"
        shutil.copytree(pristine.path, store)
        meta = json.loads((store / "zarr.json").read_text())
        manifest = meta["attributes"]["astrobio"]
        paths = sorted(_numeric_paths(manifest), key=str)
        if data is None:
            path, value = ("normalization", "cubes", "per_variable", "std", 0), math.nan
        else:
            path = data.draw(st.sampled_from(paths), label="path")
            value = data.draw(st.one_of(ABSURD, st.floats(), st.integers()), label="value")
        edited = copy.deepcopy(manifest)
        parent = edited
        for k in path[:-1]:
            parent = parent[k]
        parent[path[-1]] = value
        meta["attributes"]["astrobio"] = edited
        (store / "zarr.json").write_text(json.dumps(meta))
        try:
            cubes = exercise(store, pristine)
        except astrobio.AstrobioError as e:
            if isinstance(value, float) and not math.isfinite(value):
                key = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
                assert f"manifest: {key} is" in str(e), (key, str(e))
            return
        np.testing.assert_array_equal(cubes, pristine.cubes)  # accepted: the data read is the stored data


BAD_NUMBERS = {
    "std NaN": (("normalization", "cubes", "per_variable", "std", 1), math.nan,
                "manifest: normalization.cubes.per_variable.std[1] is nan, not a finite number"),
    "std negative": (("normalization", "cubes", "per_level", "std", 0, 1), -2.0,
                     "manifest: normalization.cubes.per_level[0].std[1] is -2.0; a standard deviation must be finite and >= 0"),
    "mean huge": (("normalization", "params", "mean", 0), 1e39, "manifest: normalization.params.mean[0] is 1e39, not a finite float32"),
    "range lo > hi": (("variables", 1, "valid_range"), [5.0, -5.0], 'manifest: variables[1].valid_range of "var1" is [5.0, -5.0]: lo > hi'),
    "shape zero": (("sample_shape", 2), 0, "manifest: sample_shape [2, 2, 0, 4] is not a sample shape"),
    "shape negative": (("sample_shape", 0), -2, "manifest: sample_shape[0] is -2, not a whole number >= 0"),
    "shape absurd": (("sample_shape", 3), 2**40, "is not a sample shape"),
    "count fractional": (("runs", 1, "count"), 2.5, "manifest: runs[1].count is 2.5, not a whole number >= 0"),
    "n_samples huge": (("n_samples",), 2**64 + 5, "manifest: n_samples is 1.8446744073709552e+19, not a whole number >= 0"),
    "stats std negative": (("stats", "cubes", "per_variable", "std", 0), -1.0, "manifest: stats.cubes.per_variable.std holds a negative"),
    "stats count fractional": (("stats", "cubes", "per_level", "count", 0, 0), 1.5, "stats.cubes.per_level.count must hold whole numbers >= 0"),
    "stats min > max": (("stats", "params", "min", 0), 1e9, "manifest: stats.params has min > max"),
    "stats inf": (("stats", "cubes", "per_variable", "max", 1), math.inf, "manifest: stats.cubes.per_variable.max[1] is inf"),
}


@pytest.mark.parametrize("case", list(BAD_NUMBERS))
def test_bad_numbers_are_integrity_errors_naming_the_key(pristine, tmp_path, case):
    path, value, message = BAD_NUMBERS[case]
    store = tmp_path / "s.zarr"
    shutil.copytree(pristine.path, store)
    meta = json.loads((store / "zarr.json").read_text())
    parent = meta["attributes"]["astrobio"]
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    (store / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(astrobio.IntegrityError) as info:
        astrobio.open_store(store)
    assert message in str(info.value)
    assert len(str(info.value).splitlines()) == 1
