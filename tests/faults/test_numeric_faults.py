"""Exploding and non-finite gradients: the run stops before the optimizer step with one clear
line, and the last checkpoint (written every step here) is the last good state: finite, from
the step before the fault.

Non-finite training loss and validation RMSE are covered in tests/test_train_run.py
(test_non_finite_training_loss_stops_with_a_clear_error, test_non_finite_validation_is_never_an_improvement).
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from astrobio.models import DatacubeEmulator
from astrobio.train import ExplodingGradientError, load_checkpoint, train
from astrobio.train.cli import main

from ._util import TINY, fresh_copy, one_line_error, tiny_config

BAD_STEP = 8  # the 9th optimizer step (epoch 2, batch 2); the checkpoint of step 8 is the last good one


class ScaleGradients(L.Callback):
    """From optimizer step BAD_STEP on, multiply every gradient by `factor` after backward."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def on_after_backward(self, trainer, pl_module) -> None:
        if trainer.global_step >= BAD_STEP:
            for p in pl_module.parameters():
                if p.grad is not None:
                    p.grad.mul_(self.factor)


def _last_good(out) -> None:
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert last["global_step"] == BAD_STEP
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    for state in last["optimizer_states"][0]["state"].values():
        assert torch.isfinite(state["exp_avg"]).all() and torch.isfinite(state["exp_avg_sq"]).all()


@pytest.mark.parametrize("factor, pattern", [
    (1e12, rf"exploding gradients: norm \S+ above optim.grad_norm_limit 1e\+06 at epoch 2, optimizer step {BAD_STEP}; "
           r"training stopped before the optimizer step"),
    (float("inf"), rf"non-finite gradient norm \((inf|nan)\) at epoch 2, optimizer step {BAD_STEP}; training stopped"),
    (float("nan"), rf"non-finite gradient norm \(nan\) at epoch 2, optimizer step {BAD_STEP}; training stopped"),
], ids=["huge", "inf", "nan"])
def test_bad_gradients_stop_before_the_step_and_keep_the_last_good_checkpoint(template, tmp_path, factor, pattern):
    out = tmp_path / "run"
    cfg = tiny_config(fresh_copy(template, tmp_path / "climate.zarr"), out, max_epochs=3, checkpoint_every_n_steps=1)
    # gradient clipping alone would rescale a huge finite gradient and step on; a non-finite
    # one would turn every weight into NaN
    assert cfg.optim.grad_clip > 0
    with pytest.raises(ExplodingGradientError, match=pattern):
        train(cfg, callbacks=[ScaleGradients(factor)])
    _last_good(out)


def test_the_cli_reports_exploding_gradients_in_one_line(template, tmp_path, monkeypatch, capsys):
    forward, calls = DatacubeEmulator.forward, {"n": 0}

    def blowing_up(self, params):  # the model's output grows by 1e8 from the 9th training batch
        out = forward(self, params)
        if self.training:
            calls["n"] += 1
            if calls["n"] > BAD_STEP:
                return out * 1e8
        return out

    monkeypatch.setattr(DatacubeEmulator, "forward", blowing_up)
    out = tmp_path / "run"
    store = fresh_copy(template, tmp_path / "climate.zarr")
    assert main(["--store", str(store), "--output-dir", str(out), "--max-epochs", "3",
                 "--set", "trainer.checkpoint_every_n_steps=1", *TINY]) == 2
    line = one_line_error(capsys)
    assert line.startswith("astrobio: error: ExplodingGradientError: exploding gradients: norm "), line
    assert f"at epoch 2, optimizer step {BAD_STEP}" in line
    _last_good(out)
