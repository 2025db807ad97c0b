"""Multimodal fusion on a slice of the real climate store: the targets, the refusal to feed the
target's source field, the CLI run with every head beside the baseline, and encoder reuse."""

from __future__ import annotations

import json

import numpy as np
import pytest

import astrobio
import torch

from astrobio import ConfigError
from astrobio.train import TrainConfig, load_checkpoint, train
from astrobio.train.cli import main
from astrobio.train.tasks.multimodal import surface_targets

SMALL = ["--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "model.options.embed=16",
         "--set", "model.options.cube_channels=[16, 16]"]


def test_surface_targets_are_area_weighted():
    lat = np.array([-60.0, 0.0, 60.0])  # weights cos(lat): 0.5, 1, 0.5 -> 1/4, 1/2, 1/4
    ta = np.zeros((1, 3, 2))
    ta[0, 0], ta[0, 1], ta[0, 2] = 250.0, 300.0, 400.0
    t, frac = surface_targets(ta, lat)[0]
    assert t == pytest.approx(0.25 * 250 + 0.5 * 300 + 0.25 * 400)
    assert frac == pytest.approx(0.5)  # only the equator lies in [273.15, 373.15] K


def test_multimodal_trains_from_the_cli_and_reports_each_modality_beside_the_baseline(climate_slice, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--model", "multimodal", "--store", str(climate_slice), "--output-dir", str(out), "--max-epochs", "4",
                 "--set", "trainer.plots=true", *SMALL]) == 0
    printed = capsys.readouterr().out
    n_test = len(astrobio.open_store(climate_slice).samples("test"))  # one held-out planet's months
    for text in ("train mean", "params only", "cube only", "fusion", "t_surface [K]", "liquid_fraction [1]", f"test ({n_test})"):
        assert text in printed, text
    assert "fusion beats params only on test:" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["heads"] == ["params", "cube", "fusion"] and summary["monitor"] == "val/rmse"
    test = summary["evaluation"]["test"]
    # the baseline is the train mean: its RMSE on the test planet is that planet's offset from it
    for k in ("baseline", "params", "cube", "fusion"):
        assert np.isfinite(test["targets"]["t_surface"][k]) and test["targets"]["t_surface"][k] > 0
    assert set(test["fusion_beats"]) == {"params", "cube"}
    assert (out / "loss_curves.png").is_file()


def test_the_cube_never_carries_the_targets_source(climate_slice, tmp_path, capsys):
    assert main(["--model", "multimodal", "--store", str(climate_slice), "--output-dir", str(tmp_path / "r"),
                 "--set", "model.options.cube_variables=[ta, ua]", *SMALL]) == 2
    assert "must not include ta" in capsys.readouterr().err


def test_single_modality_and_encoder_reuse(climate_slice, tmp_path):
    cfg = TrainConfig.for_model("multimodal")
    cfg.data.store = str(climate_slice)
    cfg.model.options.embed, cfg.model.options.cube_channels = 16, [16, 16]
    cfg.model.options.modalities = ["cube"]
    for k, v in {"max_epochs": 1, "progress_bar": False, "logger": "none", "plots": False,
                 "output_dir": str(tmp_path / "cube")}.items():
        setattr(cfg.trainer, k, v)
    cube_run = train(cfg)
    assert cube_run.summary["heads"] == ["cube"] and "fusion_beats" not in cube_run.summary["evaluation"]["test"]

    from astrobio.models.multimodal import FusionModel
    from astrobio.train.tasks.multimodal import init_from

    fused = FusionModel(9, (4, 10, 32, 64), 2, embed=16, cube_channels=[16, 16])
    init_from(fused, str(cube_run.best_checkpoint), "cube")
    saved = load_checkpoint(cube_run.best_checkpoint)["state_dict"]
    for k, v in fused.state_dict().items():
        if k.startswith(("cube_encoder.", "head_cube.")):
            assert torch.equal(v, saved[f"model.{k}"]), k
    with pytest.raises(ConfigError, match="no params encoder"):
        init_from(fused, str(cube_run.best_checkpoint), "params")
    with pytest.raises(ConfigError, match="does not fit"):
        init_from(FusionModel(9, (4, 10, 32, 64), 2, embed=8, cube_channels=[16, 16]), str(cube_run.best_checkpoint), "cube")
