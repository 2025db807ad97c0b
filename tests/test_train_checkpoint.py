"""Checkpoint files: atomic writes (a crash mid-write leaves the previous file intact and no
temp files) and weights-only reads (a pickled object is refused and never executed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import astrobio
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

    monkeypatch.setattr(ck.os, "replace", no_rename)
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
