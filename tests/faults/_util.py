"""Shared pieces of the fault tests: a tiny climate store (built once, copied per test), a tiny
training config, the one-line CLI error, and a checkpoint comparison."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from astrobio.train import TrainConfig, load_checkpoint

# 4 planets x 12 months: planet-00/01 train (samples 0-23), planet-02 val (24-35), planet-03 test (36-47)
PLANETS, SPLIT = 4, (2, 1, 1)
VAL_SAMPLE, VAL_RUN = 30, "planet-02"
TINY = ["--batch-size", "4", "--set", "model.channels=[8, 8, 4]", "--set", "model.hidden=16",
        "--set", "model.skip_channels=4", "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none",
        "--set", "trainer.plots=false"]


def build_template(path: Path) -> Path:
    from train_fixtures import build_climate_fixture

    return build_climate_fixture(path, planets=PLANETS, split=SPLIT)


def fresh_copy(template: Path, dest: Path) -> Path:
    """A private copy of the template store (each fault gets a fresh, intact store)."""
    shutil.copytree(template, dest)
    return dest


def tiny_config(store: Path, out: Path, **trainer: object) -> TrainConfig:
    cfg = TrainConfig()
    cfg.data.store, cfg.data.batch_size = str(store), 4
    cfg.model.options.channels, cfg.model.options.hidden, cfg.model.options.skip_channels = [8, 8, 4], 16, 4
    t = cfg.trainer
    t.output_dir, t.max_epochs, t.progress_bar, t.logger, t.plots = str(out), 2, False, "none", False
    for k, v in trainer.items():
        setattr(t, k, v)
    return cfg


def one_line_error(capsys) -> str:
    """The CLI's error output: exactly one line."""
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("astrobio")]
    assert len(err) == 1, err
    return err[0]


def chunk_file(store: Path, sample: int) -> Path:
    return store / "cubes" / "c" / str(sample) / "0" / "0" / "0" / "0"


def checkpoints(run: Path) -> list[str]:
    d = run / "checkpoints"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
