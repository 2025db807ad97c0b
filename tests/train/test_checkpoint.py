"""Checkpoint files: atomic writes (a crash mid-write leaves the previous file intact and no
temp files) and weights-only reads (a pickled object is refused and never executed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import astrobio
from astrobio import _fsutil
from astrobio.train import checkpoint as ck
from astrobio.train.checkpoint import AtomicCheckpointIO, atomic_save, load_checkpoint


def _ckpt(value: float) -> dict:
    return {"state_dict": {"w": torch.full((3,), value)}, "astrobio": {"format": ck.CHECKPOINT_FORMAT, "config": {}}}


def test_crash_while_writing_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_save(_ckpt(1.0), path)

    def torn_save(obj, f):  # writes half a file, then the process "dies"
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save(_ckpt(2.0), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temp file left behind

    def no_rename(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(_fsutil.os, "replace", no_rename)
    with pytest.raises(OSError, match="rename failed"):
        atomic_save(_ckpt(3.0), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    AtomicCheckpointIO().save_checkpoint(_ckpt(4.0), path)  # the Lightning plugin uses the same path
    assert AtomicCheckpointIO().load_checkpoint(path)["state_dict"]["w"].tolist() == [4.0, 4.0, 4.0]


class Payload:
    """Unpickling this would run code (creates a marker file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_holding_a_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.ckpt"
    bad = _ckpt(1.0)
    bad["extra"] = Payload(str(marker))
    torch.save(bad, path)
    with pytest.raises(astrobio.IntegrityError, match="refused to load"):
        load_checkpoint(path)
    with pytest.raises(astrobio.IntegrityError, match="refused to load"):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not marker.exists()


def test_missing_foreign_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(astrobio.DataNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.ckpt")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(astrobio.IntegrityError, match="not an astrobio training checkpoint"):
        load_checkpoint(foreign)
    corrupt = tmp_path / "corrupt.ckpt"
    atomic_save(_ckpt(1.0), corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    with pytest.raises(astrobio.IntegrityError, match="unreadable checkpoint"):
        load_checkpoint(corrupt)
    assert os.listdir(tmp_path)  # nothing was removed


def test_an_old_format_checkpoint_resumes_and_a_newer_one_is_refused(tmp_path, capsys):
    from astrobio.train.cli import main
    from train_fixtures import build_climate_fixture

    store = build_climate_fixture(tmp_path / "climate.zarr", planets=4, split=(2, 1, 1))
    out = tmp_path / "run"
    quiet = ["--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "trainer.plots=false"]
    assert main(["--store", str(store), "--output-dir", str(out), "--max-epochs", "1", "--batch-size", "8",
                 "--set", "model.options.channels=[8, 4]", "--set", "model.options.hidden=16", *quiet]) == 0
    capsys.readouterr()
    # rewrite the run's checkpoints as format 1 saved them: the datacube options at the top level of
    # `model`, and every other model's options in a section of its own
    for path in (out / "checkpoints").glob("*.ckpt"):
        ckpt = torch.load(path, weights_only=True)
        options = ckpt["astrobio"]["config"]["model"]["options"]
        ckpt["astrobio"]["config"]["model"] = {"name": "datacube", **options, "graph": {"hidden": 64}, "language": {"r": 8}}
        ckpt["astrobio"]["format"] = 1
        atomic_save(ckpt, path)
    assert main(["--resume", str(out), "--set", "model.hidden=64"]) == 2  # the old --set layout still means the same
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a 'datacube' model with hidden=16; this run asks for hidden=64" in err[0]
    assert main(["--resume", str(out), "--max-epochs", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 2 and summary["config"]["model"] == {"name": "datacube", "options": {
        "hidden": 16, "channels": [8, 4], "skip_channels": 8, "physics_baseline": True, "linear_departure": True,
        "physics": {"enabled": False, "humidity_weight": 1.0, "stability_weight": 0.1, "kappa": 2.0 / 7.0}}}
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["astrobio"]["format"] == ck.CHECKPOINT_FORMAT

    newer = load_checkpoint(out / "checkpoints" / "last.ckpt")
    newer["astrobio"]["format"] = 99
    atomic_save(newer, out / "checkpoints" / "last.ckpt")
    with pytest.raises(astrobio.IntegrityError, match="checkpoint format 99 is not supported"):
        load_checkpoint(out / "checkpoints" / "last.ckpt")
    capsys.readouterr()
    assert main(["--resume", str(out), "--max-epochs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint format 99 is not supported" in err[0]
