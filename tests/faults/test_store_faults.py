"""Store corruption, each fault on a fresh store: training refuses to start, with the exact
exception and message, from `train(cfg)` and from the CLI (exit 2, one line), and nothing is
written to the run folder.

The same faults on the read path (`CubeReader.read`), in the full scan (`Store.verify`) and in
`open_store` are asserted in tests/test_corruption.py; this module adds the trainer's answer.
Chunk faults sit in a validation sample (planet-02, sample 30): the training split reads clean,
so only the integrity scan before training (`data.verify`, on by default) can refuse them.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import zarr

import astrobio
from astrobio.train import train
from astrobio.train.cli import main

from ._util import PLANETS, SPLIT, TINY, VAL_RUN, VAL_SAMPLE, chunk_file, fresh_copy, one_line_error, tiny_config

CHUNK = f"cubes/c/{VAL_SAMPLE}/0/0/0/0"
WHERE = rf"run '{VAL_RUN}', sample {VAL_SAMPLE}, chunk '{CHUNK}': "


def flip_bit(p: Path) -> None:
    f = chunk_file(p, VAL_SAMPLE)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))


def truncate(p: Path) -> None:
    f = chunk_file(p, VAL_SAMPLE)
    f.write_bytes(f.read_bytes()[:-17])


def delete(p: Path) -> None:
    chunk_file(p, VAL_SAMPLE).unlink()


def stray_chunk(p: Path) -> None:
    f = chunk_file(p, 99)
    f.parent.mkdir(parents=True)
    f.write_bytes(chunk_file(p, 0).read_bytes())  # a valid chunk, but of no sample


def value(x: float):
    def corrupt(p: Path) -> None:
        # through zarr, so the chunk's checksum is valid and only the value is wrong
        zarr.open_array(store=str(p / "cubes"), mode="r+")[VAL_SAMPLE, 1, 2, 3, 4] = x
    return corrupt


def wrong_dtype(p: Path) -> None:
    a = zarr.open_array(store=str(p / "cubes"), mode="r")
    zarr.create_array(store=str(p / "cubes"), shape=a.shape, chunks=a.chunks, dtype="float64", overwrite=True)


def wrong_shape(p: Path) -> None:
    a = zarr.open_array(store=str(p / "cubes"), mode="r+")
    a.resize((a.shape[0] + 1, *a.shape[1:]))


def edit_manifest(edit):
    def corrupt(p: Path) -> None:
        meta = json.loads((p / "zarr.json").read_text())
        edit(meta["attributes"])
        (p / "zarr.json").write_text(json.dumps(meta))
    return corrupt


def foreign_manifest(p: Path) -> None:
    """The manifest of another store of the same shape (different data): only the digest tells."""
    from train_fixtures import build_climate_fixture

    other = build_climate_fixture(p.parent / "other.zarr", planets=PLANETS, split=SPLIT, seed=7)
    (p / "zarr.json").write_bytes((other / "zarr.json").read_bytes())


def half_written(p: Path) -> None:
    """What an ingest killed mid-way leaves: the build directory before its manifest (the
    writer's hidden temporary sibling), here found where a store is expected."""
    import numpy as np

    cubes = zarr.open_array(store=str(p / "cubes"), mode="r")[0:12]
    params = zarr.open_array(store=str(p / "params"), mode="r")[0:12]
    from astrobio.datasets.climate import PARAMS, VARIABLES

    shutil.rmtree(p)
    with astrobio.StoreWriter(p, variables=VARIABLES, params=PARAMS, sample_shape=cubes.shape[1:]) as w:
        w.add_run("planet-00", np.asarray(cubes), np.asarray(params))
        (build,) = p.parent.glob(f".{p.name}.tmp-*")  # the documented temporary sibling
        shutil.copytree(build, p)  # as if the process had died here
    assert not any(p.parent.glob(f".{p.name}.tmp-*"))  # the writer removed its own build on exit


FAULTS = {
    # fault: (corrupt, exception, message pattern)
    "bit flip in a chunk": (flip_bit, astrobio.IntegrityError, WHERE + "checksum mismatch"),
    "truncated chunk": (truncate, astrobio.IntegrityError, WHERE + "(checksum mismatch|cannot decode)"),
    "missing chunk": (delete, astrobio.IntegrityError, WHERE + "chunk missing"),
    "extra unknown chunk": (stray_chunk, astrobio.IntegrityError,
                            r"chunk 'cubes/c/99/0/0/0/0': unexpected file in the chunk directory \(belongs to no sample\)"),
    "NaN": (value(float("nan")), astrobio.IntegrityError, WHERE + r"variable \"ua\" level 2 .*not a number"),
    "+Inf": (value(float("inf")), astrobio.IntegrityError, WHERE + r"variable \"ua\" level 2 .*infinite"),
    "-Inf": (value(float("-inf")), astrobio.IntegrityError, WHERE + r"variable \"ua\" level 2 .*infinite"),
    "out-of-range value": (value(5000.0), astrobio.IntegrityError, WHERE + r".*5000 outside the valid range \[-500, 500\]"),
    "wrong dtype": (wrong_dtype, astrobio.IntegrityError, r"cubes/zarr.json.*expected float32"),
    "wrong shape": (wrong_shape, astrobio.IntegrityError, r"the manifest says \[48"),
    "manifest missing": (edit_manifest(lambda a: a.pop("astrobio")), astrobio.DataNotFoundError, "no manifest"),
    "manifest incomplete": (edit_manifest(lambda a: a["astrobio"].update(complete=False)), astrobio.DataNotFoundError,
                            "incomplete manifest"),
    "manifest from another store": (foreign_manifest, astrobio.IntegrityError,
                                    r"array 'cubes' digest is sha256:\w+, the manifest records sha256:\w+"),
    "normalization stats missing": (edit_manifest(lambda a: a["astrobio"].pop("normalization")), astrobio.IntegrityError,
                                    r"manifest: unreadable \(missing field `normalization`\)"),
    "summary stats missing": (edit_manifest(lambda a: a["astrobio"].pop("stats")), astrobio.IntegrityError,
                              "manifest: missing field stats"),
    "digests missing": (edit_manifest(lambda a: a["astrobio"].pop("digests")), astrobio.IntegrityError,
                        "manifest: missing field digests"),
    "empty split": (edit_manifest(lambda a: a["astrobio"]["split"].update(val=[])), astrobio.DataNotFoundError,
                    "split 'val' of the store has no runs"),
    "half-written store (ingest killed)": (half_written, astrobio.DataNotFoundError, "no manifest|incomplete"),
}


def test_the_intact_store_trains(template, tmp_path):
    """The control: every fault below starts from a copy of this store, which trains."""
    result = train(tiny_config(fresh_copy(template, tmp_path / "climate.zarr"), tmp_path / "run", max_epochs=1))
    assert result.last_checkpoint is not None and result.last_checkpoint.is_file()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_training_refuses_to_start_on_a_corrupt_store(template, tmp_path, capsys, fault):
    corrupt, exc, pattern = FAULTS[fault]
    store = fresh_copy(template, tmp_path / "climate.zarr")
    corrupt(store)
    out = tmp_path / "run"
    with pytest.raises(exc, match=pattern) as info:
        train(tiny_config(store, out))
    assert type(info.value) is exc
    assert not out.exists()  # refused before the run folder, a checkpoint or a log was written
    assert main(["--store", str(store), "--output-dir", str(out), *TINY]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"astrobio: error: {exc.__name__}: ") and re.search(pattern, line), line
    assert not out.exists()


def test_the_scan_before_training_can_be_turned_off_and_the_read_path_still_refuses(template, tmp_path):
    """`data.verify=false` (huge stores) skips the scan; a bad chunk in the training split is
    still refused when it is read, before the first optimizer step (the climatology reads it)."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    flip_bit_train = chunk_file(store, 5)
    data = bytearray(flip_bit_train.read_bytes())
    data[len(data) // 2] ^= 0x01
    flip_bit_train.write_bytes(bytes(data))
    cfg = tiny_config(store, tmp_path / "run")
    cfg.data.verify = False
    with pytest.raises(astrobio.IntegrityError, match="run 'planet-00', sample 5, chunk 'cubes/c/5/0/0/0/0': checksum mismatch"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
