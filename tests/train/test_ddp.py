"""DDP through torchrun on CPU: gloo backend, 2 processes, one small run (time-boxed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from astrobio.train import load_checkpoint
from train_fixtures import build_climate_fixture


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    store = build_climate_fixture(tmp_path / "s.zarr", planets=6, split=(4, 1, 1))
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "astrobio.train", "--devices", "2", "--accelerator", "cpu", "--store", str(store),
           "--output-dir", str(out), "--max-epochs", "2", "--set", "model.options.channels=[16, 16, 8]",
           "--set", "model.options.hidden=32", "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test (12)" in proc.stdout  # rank 0 printed the summary table, once
    assert proc.stdout.count("rmse [normalized]") == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["devices"] == 2 and summary["epochs_run"] == 2
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    loader = last["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader["num_replicas"] == 2 and loader["rank"] == 0
    # 48 train samples in 6 batches of 8: each rank took 3 per epoch
    assert len(last["astrobio"]["history"]["steps"]) == 2 * 3
    # the validation RMSE reduced over both ranks' shards equals a single-process evaluation
    from astrobio import open_store
    from astrobio.models import DatacubeEmulator, LinearDeparture, PhysicsBaseline
    from astrobio.train.tasks.datacube import climatology, evaluate, store_normalization

    s = open_store(store)
    weights = last["state_dict"]
    model = DatacubeEmulator(9, s.sample_shape, hidden=32, channels=[16, 16, 8], skip_channels=8)
    model.load_state_dict({k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")})
    names = ("regime_mean", "exponent", "cube_mean", "cube_scale", "param_mean", "param_scale")
    baseline = PhysicsBaseline([v.name for v in s.variables], [p.name for p in s.params],
                               *(weights[f"baseline.{n}"].numpy() for n in names))
    linear = LinearDeparture(*(weights[f"linear.{n}"].numpy() for n in ("input_mean", "intercept", "weight", "penalty")))
    model.eval()

    def predict(params):  # what the trained module computes: baseline + (linear stage + network) departure
        base, departure = baseline.terms(params)
        return base + departure * (model(params) + linear(params))

    norm = store_normalization(s, "per_variable")
    clim = climatology(s, s.samples("train"), "per_variable")
    res = evaluate(predict, s.path, s.samples("val"), normalize="per_variable", norm=norm, climatology=clim,
                   variables=[v.name for v in s.variables])
    assert res["model"]["rmse"] == pytest.approx(last["astrobio"]["history"]["epochs"][-1]["val_rmse"], rel=1e-5)
    assert torch.isfinite(torch.tensor(res["model"]["rmse"]))
