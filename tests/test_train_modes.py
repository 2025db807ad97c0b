"""Every model through the same trainer: exact resume after a crash (graph, multimodal), the
refusal to resume a checkpoint with another --model, per-model defaults and option sections,
and `--mode full` (phases, checkpoints reused, resumable at phase boundaries)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from astrobio.train import TrainConfig, apply_overrides, load_checkpoint, train
from astrobio.train.cli import build_config, build_parser, main
from train_fixtures import Crash

QUIET = {"progress_bar": False, "logger": "none", "plots": False}
#: small models, per model (a section named after each model: each config takes its own model's)
SMALL = {"graph": {"networks": ["e_coli_core"], "hidden": 16, "latent": 8},
         "multimodal": {"embed": 16, "cube_channels": [16, 16]}}


def _config(model, out, climate_slice, ecoli_graphs, **trainer) -> TrainConfig:
    cfg = apply_overrides(TrainConfig.for_model(model), {"model": SMALL})
    cfg.data.store, cfg.data.graphs = str(climate_slice), str(ecoli_graphs)
    cfg.trainer.output_dir = str(out)
    for k, v in {**QUIET, **trainer}.items():
        setattr(cfg.trainer, k, v)
    return cfg


@pytest.mark.parametrize("model, epochs, crash_at", [("graph", 5, 3), ("multimodal", 3, 4)])
def test_resume_after_a_crash_is_exact_for_every_model(model, epochs, crash_at, climate_slice, ecoli_graphs, tmp_path):
    # multimodal: 36 train samples, batch 16 -> 3 steps per epoch; step 4 is mid-epoch 2 (checkpoint every 1 step)
    extra = {"checkpoint_every_n_steps": 1} if model == "multimodal" else {}
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


def test_model_choices_defaults_and_option_sections(tmp_path):
    parser = build_parser()
    for name in ("datacube", "graph", "language", "multimodal"):
        assert build_config(parser.parse_args(["--model", name])).model.name == name
    cfg = build_config(parser.parse_args(["--model", "graph", "--set", "model.options.latent=4"]))
    assert cfg.model.options.latent == 4 and cfg.trainer.max_epochs == 200 and cfg.data.batch_size == 3  # graph defaults
    assert build_config(parser.parse_args(["--model", "graph", "--max-epochs", "7"])).trainer.max_epochs == 7
    old = tmp_path / "old.yaml"  # a config written before the other models existed still loads
    old.write_text("model: {name: datacube, hidden: 64, channels: [16, 8]}\ntrainer: {max_epochs: 4}\n")
    cfg = build_config(parser.parse_args(["--config", str(old)]))
    assert asdict(cfg.model.options) == {"hidden": 64, "channels": [16, 8], "skip_channels": 8} and cfg.trainer.max_epochs == 4
    new = tmp_path / "new.yaml"
    new.write_text("model: {name: multimodal, options: {modalities: [cube], embed: 8}}\n")
    cfg = build_config(parser.parse_args(["--config", str(new)]))
    assert cfg.model.options.modalities == ["cube"] and cfg.model.options.embed == 8 and cfg.trainer.patience == 15
    sections = tmp_path / "sections.yaml"  # the per-model sections of the layout before {name, options}
    sections.write_text("model: {name: multimodal, multimodal: {modalities: [cube], embed: 8}, graph: {latent: 2}}\n")
    assert build_config(parser.parse_args(["--config", str(sections)])).model.options == cfg.model.options
    with pytest.raises(Exception, match="model.options.modalities"):
        build_config(parser.parse_args(["--model", "multimodal", "--set", "model.options.modalities=[sound]"]))
    with pytest.raises(Exception, match="unknown option 'model.options.nope'"):
        build_config(parser.parse_args(["--model", "graph", "--set", "model.options.nope=1"]))


def test_full_mode_runs_phases_reuses_encoders_and_resumes_at_phase_boundaries(climate_slice, ecoli_graphs, tmp_path, capsys):
    out = tmp_path / "full"
    args = ["--mode", "full", "--set", f"data.store={climate_slice}", "--set", f"data.graphs={ecoli_graphs}",
            "--set", "model.graph.networks=[e_coli_core]", "--set", "model.multimodal.embed=16",
            "--set", "model.multimodal.cube_channels=[16, 16]", "--set", "trainer.progress_bar=false",
            "--set", "trainer.logger=none", "--set", "trainer.plots=false",
            "--set", "trainer.phases=[graph, multimodal-params, multimodal-cube, multimodal]"]
    assert main([*args, "--output-dir", str(out), "--max-epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "full pipeline" in printed and "common neighbours / Adamic-Adar" in printed and "train mean" in printed
    phases = out / "phases"
    assert sorted(p.name for p in phases.iterdir()) == ["graph", "multimodal", "multimodal-cube", "multimodal-params"]
    fusion = json.loads((phases / "multimodal" / "summary.json").read_text())
    init = fusion["config"]["model"]["multimodal"]
    assert init["init_params"] == str(phases / "multimodal-params" / "checkpoints" / "best.ckpt")
    assert init["init_cube"] == str(phases / "multimodal-cube" / "checkpoints" / "best.ckpt")
    assert fusion["heads"] == ["params", "cube", "fusion"] and "fusion_beats" in fusion["evaluation"]["test"]
    # the fusion phase started from the encoder phase's weights (checked on its first checkpoint's config + weights)
    enc = load_checkpoint(phases / "multimodal-cube" / "checkpoints" / "best.ckpt")["state_dict"]
    assert any(k.startswith("model.cube_encoder.") for k in enc) and not any(k.startswith("model.params_encoder.") for k in enc)

    # interrupt the last phase: its summary is gone, its checkpoints remain; resuming skips the rest
    graph_summary = (phases / "graph" / "summary.json").read_text()
    (phases / "multimodal" / "summary.json").unlink()
    assert main(["--mode", "full", "--resume", str(out), "--max-epochs", "3"]) == 0
    assert (phases / "graph" / "summary.json").read_text() == graph_summary  # finished phase: skipped
    resumed = json.loads((phases / "multimodal" / "summary.json").read_text())
    assert resumed["epochs_run"] == 3  # continued from its epoch-2 checkpoint, not restarted
    assert main(["--mode", "full", "--output-dir", str(out)]) == 2
    assert "already holds a pipeline" in capsys.readouterr().err
    assert main(["--mode", "full", "--model", "graph", "--output-dir", str(tmp_path / "x")]) == 2
    assert "--mode full trains every model" in capsys.readouterr().err
    assert main(["--mode", "full", "--set", "model.options.hidden=8", "--output-dir", str(tmp_path / "y")]) == 2
    assert "give options per model (model.<name>.<option>" in capsys.readouterr().err
