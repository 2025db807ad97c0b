"""The documented fifth model (examples/custom_task.py) resumes after an interruption: its task
returns no store identity, and the runner records the store's kind, path and content digest
itself, so `--resume` continues the run (before, every task copied the digest in by hand and this
one, which did not, was refused: "different store (digest None)"). A resume on another store is
still refused in one line."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from astrobio import ConfigError
from astrobio.train import TrainConfig, load_checkpoint, register_task, train, unregister_task
from train_fixtures import Crash

_spec = importlib.util.spec_from_file_location("custom_task", Path(__file__).parents[3] / "examples" / "custom_task.py")
custom_task = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["custom_task"] = custom_task  # dataclasses look their module up by name
_spec.loader.exec_module(custom_task)  # type: ignore[union-attr]


@pytest.fixture
def paramfit():
    register_task("paramfit", custom_task.ParamFitTask)
    yield "paramfit"
    unregister_task("paramfit")


def _config(store: Path, out: Path) -> TrainConfig:
    cfg = TrainConfig.for_model("paramfit")
    cfg.data.location, cfg.model.options.hidden = str(store), 8
    cfg.trainer.output_dir, cfg.trainer.max_epochs, cfg.trainer.checkpoint_every_n_steps = str(out), 3, 1
    cfg.trainer.logger, cfg.trainer.progress_bar, cfg.trainer.plots = "none", False, False
    return cfg


def test_the_custom_task_resumes_after_an_interruption(paramfit, climate_slice, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_config(climate_slice, out), callbacks=[Crash(at=2)])
    meta = load_checkpoint(out / "checkpoints" / "last.ckpt")["astrobio"]["meta"]
    assert meta["store"]["kind"] == "cube" and meta["store"]["content_digest"].startswith("sha256:")
    resumed = train(_config(climate_slice, out), resume=out)
    assert resumed.summary is not None and resumed.summary["epochs_run"] == 3
    assert len(resumed.history["epochs"]) == 3 and resumed.summary["store_digest"] == meta["store"]["content_digest"]

    other = tmp_path / "other.zarr"  # the same data, another store (a changed manifest: another digest)
    shutil.copytree(climate_slice, other)
    doc = json.loads((other / "zarr.json").read_text())
    doc["attributes"]["astrobio"]["content_digest"] = "sha256:" + "0" * 64
    (other / "zarr.json").write_text(json.dumps(doc))
    cfg = _config(other, out)
    cfg.data.verify = False
    with pytest.raises(ConfigError, match="was trained on a different store"):
        train(cfg, resume=out)
