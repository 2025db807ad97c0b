"""`--model language` through the shared trainer on real iJO1366 reaction names: the table beside
the baselines, the adapter saved/reloaded/reproduced, small trainable-only checkpoints, and
exact resume after a crash."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from astrobio.train import TrainConfig, load_checkpoint, train
from astrobio.train.cli import main


def _cfg(store, out, **trainer) -> TrainConfig:
    cfg = TrainConfig.for_model("language")
    cfg.data.graphs, cfg.data.batch_size = str(store), 16
    cfg.model.options.subset, cfg.model.options.r, cfg.model.options.max_length = [32, 16, 16], 4, 32
    for k, v in {"progress_bar": False, "logger": "none", "plots": False, "output_dir": str(out), **trainer}.items():
        setattr(cfg.trainer, k, v)
    return cfg


def _step_trains_from_the_cli_beside_the_baselines(ijo_graphs, out, capsys) -> None:
    assert main(["--model", "language", "--set", f"data.graphs={ijo_graphs}", "--output-dir", str(out), "--max-epochs", "2",
                 "--set", "model.options.subset=[32, 16, 16]", "--set", "model.options.max_length=32",
                 "--set", "model.options.r=4", "--batch-size", "16", "--set", "trainer.plots=false",
                 "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none"]) == 0
    printed = capsys.readouterr().out
    for text in ("LoRA MiniLM", "majority class", "TF-IDF + LR", "macro-F1", "accuracy", "reloaded and reproduced"):
        assert text in printed, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["monitor"] == "val/f1" and summary["mode"] == "max"
    assert summary["adapter"]["reproduced_after_reload"] and summary["adapter"]["bytes"] < 2_000_000
    assert {p.name for p in (out / "adapter").iterdir()} >= {"adapter_model.safetensors", "head.safetensors"}


def _step_checkpoints_hold_the_trainable_tensors_only(out) -> dict:
    ckpt = out / "checkpoints" / "last.ckpt"
    assert ckpt.stat().st_size < 5_000_000  # trainable tensors only, not the 90 MB encoder
    whole = load_checkpoint(ckpt)
    assert whole["state_dict"] and all("lora_" in k or k.startswith("model.head.") for k in whole["state_dict"])
    return whole


def _step_resume_after_a_crash_is_exact(ijo_graphs, tmp_path, whole) -> None:
    class Crash(L.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step == 3:  # in epoch 2 (2 steps per epoch), after epoch 1's checkpoint
                raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_cfg(ijo_graphs, tmp_path / "crashed", max_epochs=2), callbacks=[Crash()])
    resumed = train(_cfg(ijo_graphs, tmp_path / "crashed", max_epochs=2), resume=tmp_path / "crashed")
    assert resumed.history["steps"] == whole["astrobio"]["history"]["steps"]  # [epoch, batch, step, loss], bit for bit
    b = load_checkpoint(resumed.last_checkpoint)
    assert all(torch.equal(whole["state_dict"][k], b["state_dict"][k]) for k in whole["state_dict"])


def test_language_trains_from_the_cli_beside_the_baselines_and_resumes_exactly(ijo_graphs, tmp_path, capsys):
    out = tmp_path / "whole"
    _step_trains_from_the_cli_beside_the_baselines(ijo_graphs, out, capsys)
    whole = _step_checkpoints_hold_the_trainable_tensors_only(out)
    _step_resume_after_a_crash_is_exact(ijo_graphs, tmp_path, whole)
