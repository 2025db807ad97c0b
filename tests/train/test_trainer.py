"""Training runs on small fixture stores: the CLI smoke run (summary, plots, checkpoints,
TensorBoard), exact resume after a crash, the non-finite guard, refusals with one-line errors,
the default-dataset route, and that the emulator beats the climatology on learnable data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import astrobio
from astrobio.models import DatacubeEmulator
from astrobio.train import TrainConfig, load_checkpoint, train
from astrobio.train.cli import main
from train_fixtures import Crash, build_climate_fixture

SMALL = ["--set", "model.options.channels=[16, 16, 8]", "--set", "model.options.hidden=32", "--set", "trainer.progress_bar=false"]


@pytest.fixture(scope="module")
def climate_store(tmp_path_factory):
    return build_climate_fixture(tmp_path_factory.mktemp("store") / "climate.zarr", planets=6, split=(4, 1, 1))


def small_config(store, out, **trainer) -> TrainConfig:
    cfg = TrainConfig()
    cfg.data.store, cfg.data.batch_size = str(store), 8
    cfg.model.options.channels, cfg.model.options.hidden = [16, 16, 8], 32
    t = cfg.trainer
    t.output_dir, t.max_epochs, t.progress_bar, t.logger, t.plots = str(out), 3, False, "none", False
    for k, v in trainer.items():
        setattr(t, k, v)
    return cfg


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "no error printed"
    return err[-1]


def test_cli_smoke_run_writes_summary_plots_checkpoints_and_tensorboard(climate_store, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["--store", str(climate_store), "--output-dir", str(out), "--max-epochs", "2", "--physics-constraints",
               "--set", "trainer.checkpoint_every_n_epochs=1", *SMALL])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "climatology" in printed and "rmse [normalized]" in printed and "ta [K]" in printed and "test (12)" in printed
    for name in ("summary.txt", "summary.json", "config.yaml", "loss_curves.png", "fields.png"):
        assert (out / name).is_file(), name
    assert (out / "fields.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["best.ckpt", "epoch-0001.ckpt", "epoch-0002.ckpt", "last.ckpt"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == "32-true" and summary["accelerator"] == "cpu" and summary["epochs_run"] == 2
    assert math.isfinite(summary["evaluation"]["test"]["model"]["rmse"])
    assert set(summary["evaluation"]["test"]["model"]["rmse_physical"]) == {"ta", "ua", "va", "hus", "wap"}
    assert set(summary["evaluation"]["test"]["runs"]) == {"planet-05"}  # per-planet breakdown
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    for key in ("state_dict", "optimizer_states", "lr_schedulers", "loops", "callbacks"):
        assert key in last, key
    meta = last["astrobio"]
    assert meta["config"]["trainer"]["max_epochs"] == 2 and meta["config"]["model"]["options"]["channels"] == [16, 16, 8]
    assert meta["config"]["model"]["options"]["physics"]["enabled"] and set(summary["evaluation"]["test"]["physics"]["model"]) == {"humidity", "stability"}
    assert meta["sampler"]["seed"] == 0 and len(meta["history"]["epochs"]) == 2
    assert last["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]["epoch"] == 1
    # the same folder again without --resume is refused; with --resume it continues (to epoch 3)
    assert main(["--store", str(climate_store), "--output-dir", str(out), *SMALL]) == 2
    assert "already holds a run's checkpoints" in _one_line_error(capsys)
    # resuming with a different model architecture is refused in one line, before any training
    assert main(["--resume", str(out), "--set", "model.options.hidden=64"]) == 2
    assert "holds a 'datacube' model" in (line := _one_line_error(capsys)) and "hidden=32" in line and "hidden=64" in line
    assert main(["--resume", str(out), "--max-epochs", "3", "--set", "trainer.plots=false"]) == 0
    assert len(load_checkpoint(out / "checkpoints" / "last.ckpt")["astrobio"]["history"]["epochs"]) == 3


@pytest.mark.parametrize("where", ["mid-epoch", "epoch-end"])
def test_resume_after_a_crash_continues_exactly(climate_store, tmp_path, where):
    def cfg(out):
        if where == "epoch-end":  # 6 optimizer steps per epoch; last.ckpt at each epoch end
            return small_config(climate_store, out)
        c = small_config(climate_store, out, checkpoint_every_n_steps=2)  # and every 2 steps
        c.optim.accumulate = 2  # 6 batches per epoch, 2 per optimizer step
        c.optim.param_noise = 0.3  # its generator state must resume too
        return c

    whole = train(cfg(tmp_path / "whole"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg(tmp_path / "crashed"), callbacks=[Crash(at=5 if where == "mid-epoch" else 8)])  # in epoch 2
    saved = load_checkpoint(tmp_path / "crashed" / "checkpoints" / "last.ckpt")
    if where == "mid-epoch":
        assert saved["global_step"] == 4 and saved["astrobio"]["sampler"] == {
            "seed": 0, "epoch": 1, "start": 2, "rank": 0, "num_replicas": 1}
    else:
        assert saved["global_step"] == 6 and len(saved["astrobio"]["history"]["epochs"]) == 1
    resumed = train(cfg(tmp_path / "crashed"), resume=tmp_path / "crashed")
    assert len(whole.history["steps"]) == 18
    assert resumed.history["steps"] == whole.history["steps"]  # [epoch, batch, step, loss], bit for bit
    assert resumed.history["epochs"] == whole.history["epochs"]
    a = load_checkpoint(whole.last_checkpoint)
    b = load_checkpoint(resumed.last_checkpoint)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["lr_schedulers"] == b["lr_schedulers"]


def _poison(monkeypatch, *, training: bool, after: int) -> None:
    """Make the model's output non-finite from its `after`-th call in training (or eval) mode."""
    forward = DatacubeEmulator.forward
    calls = {"n": 0}

    def poisoned(self, params):
        out = forward(self, params)
        if self.training == training:
            calls["n"] += 1
            if calls["n"] >= after:
                return out + float("inf")
        return out

    monkeypatch.setattr(DatacubeEmulator, "forward", poisoned)


def test_non_finite_training_loss_stops_with_a_clear_error(climate_store, tmp_path, monkeypatch, capsys):
    _poison(monkeypatch, training=True, after=8)  # epoch 2, batch 2 (6 batches per epoch)
    out = tmp_path / "run"
    assert main(["--store", str(climate_store), "--output-dir", str(out), "--max-epochs", "3", *SMALL]) == 2
    line = _one_line_error(capsys)
    assert "NonFiniteLossError: non-finite training loss" in line and "epoch 2" in line
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")  # epoch 1's, not the poisoned state
    assert len(last["astrobio"]["history"]["epochs"]) == 1
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_non_finite_validation_is_never_an_improvement(climate_store, tmp_path, monkeypatch):
    _poison(monkeypatch, training=False, after=3)  # validation of epoch 2 (2 batches per validation)
    out = tmp_path / "run"
    with pytest.raises(astrobio.train.NonFiniteLossError, match="non-finite validation RMSE"):
        train(small_config(climate_store, out))
    best = load_checkpoint(out / "checkpoints" / "best.ckpt")
    state = next(v for k, v in best["callbacks"].items() if k.startswith("RunCheckpoints"))
    assert state["best_epoch"] == 1 and math.isfinite(state["best_score"])
    assert len(load_checkpoint(out / "checkpoints" / "last.ckpt")["astrobio"]["history"]["epochs"]) == 1


def test_refusals_exit_2_with_one_line(climate_store, tmp_path, capsys, monkeypatch):
    assert main(["--store", str(tmp_path / "missing.zarr"), *SMALL]) == 2
    assert _one_line_error(capsys).startswith("astrobio: error: DataNotFoundError")
    no_val = build_climate_fixture(tmp_path / "noval.zarr", planets=3, split=(3, 0, 0))
    assert main(["--store", str(no_val), "--output-dir", str(tmp_path / "r"), *SMALL]) == 2
    assert "split 'val' of the store has no runs" in _one_line_error(capsys)
    assert main(["--store", str(climate_store), "--precision", "16-mixed", "--accelerator", "cpu", *SMALL]) == 2
    assert "16-mixed needs CUDA" in _one_line_error(capsys)
    renamed = build_climate_fixture(tmp_path / "renamed.zarr", planets=3, split=(1, 1, 1), names=("t", "u", "v", "q", "w"))
    assert main(["--store", str(renamed), "--physics-constraints", "--output-dir", str(tmp_path / "p"), *SMALL]) == 2
    assert "needs variables ta and hus; the store lacks ['ta', 'hus']" in _one_line_error(capsys)
    assert main(["--store", str(climate_store), "--set", "data.params=[instellation, nope]", "--output-dir",
                 str(tmp_path / "q"), *SMALL]) == 2
    assert "data.params names ['nope']" in _one_line_error(capsys)
    assert main(["--store", str(climate_store), "--set", "optim.lrr=1", *SMALL]) == 2
    assert "unknown option 'optim.lrr'" in _one_line_error(capsys)
    assert main(["--store", str(climate_store), "--set", "model.options.channels=[8]", "--output-dir", str(tmp_path / "c"), *SMALL[2:]]) == 2
    assert "model 'datacube': channels" in _one_line_error(capsys)
    evil = tmp_path / "evil.ckpt"
    torch.save({"astrobio": {"format": 1, "config": {}}, "x": np.dtype("float32")}, evil)  # pickles numpy globals
    assert main(["--resume", str(evil)]) == 2
    assert "refused to load" in _one_line_error(capsys)


def test_no_arguments_trains_on_the_default_climate_part(tmp_path, monkeypatch, capsys):
    """`python -m astrobio.train` builds the default dataset's climate store from the pack; a
    missing pack is one clear line. (The real pack is simulated here by the simulator-format test
    fixture `fake_result`.)"""
    from astrobio.datasets import climate as climate_part
    from astrobio.simulate import pack_results, save_result
    from test_datasets_cli import fake_result

    monkeypatch.setenv("ASTROBIO_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    pack_path = climate_part.pack_path
    monkeypatch.setattr(climate_part, "pack_path", lambda directory=None: pack_path(directory or tmp_path / "pack"))
    assert main(["--max-epochs", "1"]) == 2
    assert "the ExoPlaSim climate pack is missing" in _one_line_error(capsys)

    for name, teff in [("earth", 5772.0), ("planet-b", 3000.0), ("planet-c", 3500.0), ("planet-d", 4000.0)]:
        save_result(fake_result(name, teff), tmp_path / "results" / name)
    pack_results(tmp_path / "results", tmp_path / "pack",
                              {"train": ["earth", "planet-b"], "val": ["planet-c"], "test": ["planet-d"]})
    assert main(["--max-epochs", "1", *SMALL]) == 0
    runs = list((tmp_path / "runs").glob("datacube-*"))
    assert len(runs) == 1 and (runs[0] / "summary.json").is_file()
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["store"] == str(tmp_path / "home" / "default" / "climate.zarr")


def test_the_emulator_beats_the_climatology_on_learnable_data(tmp_path):
    store = build_climate_fixture(tmp_path / "learn.zarr", planets=12, split=(9, 1, 2), noise=0.2, seed=3)
    cfg = small_config(store, tmp_path / "run", max_epochs=20, patience=20)
    cfg.optim.lr = 3e-3
    result = train(cfg)
    test = result.summary["evaluation"]["test"]
    assert test["model"]["rmse"] < 0.6 * test["climatology"]["rmse"], test
    ta_model, ta_clim = test["model"]["rmse_physical"]["ta"], test["climatology"]["rmse_physical"]["ta"]
    assert ta_model < 0.6 * ta_clim


def test_early_stopping_on_the_validation_metric(climate_store, tmp_path, monkeypatch):
    forward = DatacubeEmulator.forward

    def flat_in_eval(self, params):  # validation sees the same predictions every epoch: no improvement
        out = forward(self, params)
        return out if self.training else torch.zeros_like(out)

    monkeypatch.setattr(DatacubeEmulator, "forward", flat_in_eval)
    cfg = small_config(climate_store, tmp_path / "run", max_epochs=10, patience=2)
    cfg.trainer.plots = True
    result = train(cfg)
    assert result.summary["stopped_early"] and result.summary["epochs_run"] == 3 and result.summary["best_epoch"] == 1
    assert (tmp_path / "run" / "loss_curves.png").is_file()


def test_a_subset_of_parameters_as_inputs(climate_store, tmp_path):
    cfg = small_config(climate_store, tmp_path / "run", max_epochs=1)
    cfg.data.params = ["instellation", "synchronous", "equilibrium_temperature"]
    result = train(cfg)
    weights = load_checkpoint(result.best_checkpoint)["state_dict"]
    assert weights["model.mlp.0.weight"].shape[1] == 3
    assert math.isfinite(result.summary["evaluation"]["test"]["model"]["rmse"])
