"""The "add a model" recipe (docs/add-a-model.md), tried end to end: a fifth task defined outside
astrobio (examples/custom_task.py), registered with `register_task`, trained one epoch through the
`python -m astrobio.train` entry point (`astrobio.train.cli.main`, in process) on the real
climate planets the fixtures give. The task predicts one planet parameter from the others with
a small MLP, beside the train-mean baseline. It uses only astrobio's public pieces: the task
protocol's types, a plain data-opening function of the datacube task, the run history, the
non-finite guard, the optimizer and schedule, and the report helpers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from astrobio import ConfigError
from astrobio.train import TrainConfig, register_task, unregister_task
from astrobio.train.cli import main
from astrobio.train.tasks import Task, get_task

# The task is the one new users copy: examples/custom_task.py (run here, not written twice).
_spec = importlib.util.spec_from_file_location("custom_task", Path(__file__).parents[3] / "examples" / "custom_task.py")
custom_task = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["custom_task"] = custom_task  # dataclasses look their module up by name
_spec.loader.exec_module(custom_task)  # type: ignore[union-attr]
ParamFitOptions, ParamFitTask = custom_task.ParamFitOptions, custom_task.ParamFitTask


# ------------------------------------------------------------------ step 4: register, train, check
@pytest.fixture
def paramfit():
    register_task("paramfit", ParamFitTask)
    yield "paramfit"
    unregister_task("paramfit")


def test_step_1_the_task_satisfies_the_protocol(paramfit):
    task: Task = get_task(paramfit)
    for attr in ("name", "monitor", "mode", "options_type", "defaults", "open", "build", "evaluate", "table",
                 "headline", "plots"):
        assert hasattr(task, attr), attr
    cfg = TrainConfig.for_model(paramfit)  # its options and its defaults for the shared sections
    assert cfg.model.options == ParamFitOptions() and cfg.data.batch_size == 16 and cfg.trainer.max_epochs == 5


def test_step_2_one_epoch_through_the_cli_entry(paramfit, climate_slice, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--model", paramfit, "--store", str(climate_slice), "--max-epochs", "1", "--output-dir", str(out),
                 "--set", "model.options.hidden=8", "--set", "trainer.progress_bar=false",
                 "--set", "trainer.logger=none"]) == 0
    printed = capsys.readouterr().out
    assert "paramfit, gravity" in printed and "train mean" in printed and "test (" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == paramfit and summary["epochs_run"] == 1 and summary["monitor"] == "val/rmse"
    assert np.isfinite(summary["evaluation"]["test"]["model"]) and summary["config"]["model"]["options"]["hidden"] == 8
    assert {p.name for p in (out / "checkpoints").iterdir()} >= {"best.ckpt", "last.ckpt"}
    assert (out / "loss_curves.png").is_file()


def test_step_3_unregistered_it_is_unknown_again(paramfit):
    unregister_task(paramfit)
    with pytest.raises(ConfigError, match="unknown model 'paramfit'"):
        get_task(paramfit)


def test_step_4_the_example_script_trains_it(climate_slice, tmp_path, capsys):
    out = tmp_path / "example-run"
    try:
        assert custom_task.main(["--store", str(climate_slice), "--max-epochs", "1", "--output-dir", str(out),
                                 "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none"]) == 0
    finally:
        unregister_task("paramfit")
    assert "paramfit, gravity" in capsys.readouterr().out and (out / "summary.json").is_file()


# The runner refuses this resume today: it compares the store digest the task copied into its
# checkpoint meta by hand, and the example (as a new user's task would) copies none ("different
# store (digest None)"). The runner is to record the store identity itself (issue 22, item 5;
# the `plugins` change to trainer.py); strict, so this marker must go when that lands.
@pytest.mark.xfail(strict=True, raises=ConfigError, reason="resume refused until the runner records the store digest itself")
def test_step_5_it_resumes_exactly_after_an_interruption(paramfit, climate_slice, tmp_path):
    import torch

    from astrobio.train import load_checkpoint, train
    from train_fixtures import Crash

    def config(out):
        cfg = TrainConfig.for_model(paramfit)
        cfg.data.store, cfg.data.batch_size = str(climate_slice), 4
        t = cfg.trainer
        t.output_dir, t.max_epochs, t.progress_bar, t.logger, t.plots, t.checkpoint_every_n_steps = str(out), 2, False, "none", False, 1
        return cfg

    whole = train(config(tmp_path / "whole"))
    steps = len(whole.history["steps"])
    assert steps >= 3
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config(tmp_path / "crashed"), callbacks=[Crash(at=steps - 1)])  # the process dies before the last step
    resumed = train(config(tmp_path / "crashed"), resume=tmp_path / "crashed")
    assert resumed.history["steps"] == whole.history["steps"] and resumed.history["epochs"] == whole.history["epochs"]
    a, b = load_checkpoint(whole.last_checkpoint)["state_dict"], load_checkpoint(resumed.last_checkpoint)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.evaluation is not None and resumed.evaluation.model == pytest.approx(whole.evaluation.model)
