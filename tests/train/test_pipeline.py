"""`--mode full` (astrobio.train.pipeline): phases, encoders reused, resumable at phase boundaries;
model options per model."""

from __future__ import annotations

import json

from astrobio.train import load_checkpoint
from astrobio.train.cli import main


ARGS = ["--mode", "full", "--set", "model.graph.networks=[e_coli_core]", "--set", "model.multimodal.embed=16",
        "--set", "model.multimodal.cube_channels=[16, 16]", "--set", "trainer.progress_bar=false",
        "--set", "trainer.logger=none", "--set", "trainer.plots=false",
        "--set", "trainer.phases=[graph, multimodal-params, multimodal-cube, multimodal]"]


def _step_run_the_phases(out, climate_slice, ecoli_graphs, capsys) -> None:
    args = [*ARGS, "--set", f"data.store={climate_slice}", "--set", f"data.graphs={ecoli_graphs}"]
    assert main([*args, "--output-dir", str(out), "--max-epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "full pipeline" in printed and "common neighbours / Adamic-Adar" in printed and "train mean" in printed
    phases = out / "phases"
    assert sorted(p.name for p in phases.iterdir()) == ["graph", "multimodal", "multimodal-cube", "multimodal-params"]


def _step_fusion_starts_from_the_encoder_phases(phases) -> None:
    fusion = json.loads((phases / "multimodal" / "summary.json").read_text())
    init = fusion["config"]["model"]["options"]
    assert init["init_params"] == str(phases / "multimodal-params" / "checkpoints" / "best.ckpt")
    assert init["init_cube"] == str(phases / "multimodal-cube" / "checkpoints" / "best.ckpt")
    assert fusion["heads"] == ["params", "cube", "fusion"] and "fusion_beats" in fusion["evaluation"]["test"]
    # the fusion phase started from the encoder phase's weights (checked on its first checkpoint's config + weights)
    enc = load_checkpoint(phases / "multimodal-cube" / "checkpoints" / "best.ckpt")["state_dict"]
    assert any(k.startswith("model.cube_encoder.") for k in enc) and not any(k.startswith("model.params_encoder.") for k in enc)


def _step_resume_skips_finished_phases_and_continues_the_interrupted_one(out, phases) -> None:
    # interrupt the last phase: its summary is gone, its checkpoints remain; resuming skips the rest
    graph_summary = (phases / "graph" / "summary.json").read_text()
    (phases / "multimodal" / "summary.json").unlink()
    assert main(["--mode", "full", "--resume", str(out), "--max-epochs", "3"]) == 0
    assert (phases / "graph" / "summary.json").read_text() == graph_summary  # finished phase: skipped
    resumed = json.loads((phases / "multimodal" / "summary.json").read_text())
    assert resumed["epochs_run"] == 3  # continued from its epoch-2 checkpoint, not restarted


def _step_refusals_are_one_line(out, tmp_path, capsys) -> None:
    assert main(["--mode", "full", "--output-dir", str(out)]) == 2
    assert "already holds a pipeline" in capsys.readouterr().err
    assert main(["--mode", "full", "--model", "graph", "--output-dir", str(tmp_path / "x")]) == 2
    assert "--mode full trains every model" in capsys.readouterr().err
    assert main(["--mode", "full", "--set", "model.options.hidden=8", "--output-dir", str(tmp_path / "y")]) == 2
    assert "give options per model (model.<name>.<option>" in capsys.readouterr().err


def test_full_mode_runs_phases_reuses_encoders_and_resumes_at_phase_boundaries(climate_slice, ecoli_graphs, tmp_path, capsys):
    out = tmp_path / "full"
    _step_run_the_phases(out, climate_slice, ecoli_graphs, capsys)
    _step_fusion_starts_from_the_encoder_phases(out / "phases")
    _step_resume_skips_finished_phases_and_continues_the_interrupted_one(out, out / "phases")
    _step_refusals_are_one_line(out, tmp_path, capsys)
