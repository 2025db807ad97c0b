"""`--model detector` through the runner on a real observation store: one epoch, the summary in
the layout every task uses, the model and both baselines with intervals and per-survey rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_detector_trains_and_reports_against_its_baselines(obs_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "astrobio.train", "--model", "detector", "--data", str(obs_store),
                           "--max-epochs", "1", "--output-dir", str(run), "--set", "trainer.progress_bar=false",
                           "--set", "model.options.bootstrap=50"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["held_out_split"] == "test" and s["metric"] == "auc" and set(s["baselines"]) == {"snr", "logistic"}
    test = s["evaluation"]["test"]
    for name in ("model", "snr", "logistic"):
        r = test[name]
        assert 0.0 <= r["auc"] <= 1.0 and len(r["ci95"]["auc"]) == 2
        assert {"precision", "recall", "f1", "threshold"} <= set(r)
    assert "auc_gain" in test["snr"] and "ZTF image" in test["per_survey"]
    assert s["store"] == str(obs_store.resolve()) and s["store_digest"].startswith("sha256:")  # recorded by the runner
    assert "ZTF image" in s["dataset"]["surveys"] and "HEALPix" in s["dataset"]["split_rule"]
