"""Every model resumes through the same trainer: exact resume after a crash (graph, multimodal;
the datacube's and the language model's are in test_trainer.py and tasks/test_language.py), and
the refusal to resume a checkpoint with another --model."""

from __future__ import annotations

import pytest
import torch

from astrobio import open_store
from astrobio.train import TrainConfig, apply_overrides, load_checkpoint, train
from astrobio.train.cli import main
from train_fixtures import Crash

QUIET = {"progress_bar": False, "logger": "none", "plots": False}
#: small models, per model (a section named after each model: each config takes its own model's)
SMALL = {"graph": {"networks": ["e_coli_core"], "hidden": 16, "latent": 8},
         "multimodal": {"embed": 16, "cube_channels": [16, 16]}}


def _config(model, out, climate_slice, ecoli_graphs, **trainer) -> TrainConfig:
    cfg = apply_overrides(TrainConfig.for_model(model), {"model": SMALL})
    cfg.data.location = str(ecoli_graphs if model == "graph" else climate_slice)
    if model == "multimodal":
        cfg.data.batch_size = 4
    cfg.trainer.output_dir = str(out)
    for k, v in {**QUIET, **trainer}.items():
        setattr(cfg.trainer, k, v)
    return cfg


@pytest.mark.parametrize("model, epochs, crash_at", [("graph", 5, 3), ("multimodal", 3, 4)])
def test_resume_after_a_crash_is_exact_for_every_model(model, epochs, crash_at, climate_slice, ecoli_graphs, tmp_path):
    # multimodal: the slice's 3 train planets x 4 months = 12 samples, batch 4 -> 3 steps per epoch;
    # step 4 is mid-epoch 2 (checkpoint every 1 step)
    extra = {"checkpoint_every_n_steps": 1} if model == "multimodal" else {}
    n_train = len(open_store(climate_slice).samples("train"))
    assert model != "multimodal" or n_train // 4 >= 3
    whole = train(_config(model, tmp_path / "whole", climate_slice, ecoli_graphs, max_epochs=epochs, **extra))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_config(model, tmp_path / "crashed", climate_slice, ecoli_graphs, max_epochs=epochs, **extra),
              callbacks=[Crash(at=crash_at)])
    resumed = train(_config(model, tmp_path / "crashed", climate_slice, ecoli_graphs, max_epochs=epochs, **extra),
                    resume=tmp_path / "crashed")
    assert resumed.history["steps"] == whole.history["steps"]  # [epoch, batch, step, loss], bit for bit
    assert resumed.history["epochs"] == whole.history["epochs"]
    a, b = load_checkpoint(whole.last_checkpoint), load_checkpoint(resumed.last_checkpoint)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_resume_with_another_model_is_one_line(climate_slice, ecoli_graphs, tmp_path, capsys):
    out = tmp_path / "g"
    train(_config("graph", out, climate_slice, ecoli_graphs, max_epochs=1))
    capsys.readouterr()  # the training run's own log lines
    assert main(["--resume", str(out), "--model", "multimodal"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was trained with --model graph, not --model multimodal" in err[0]
