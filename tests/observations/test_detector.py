"""`--model detector` through the runner on a real observation store: one epoch, the summary in
the layout every task uses, the model and both baselines with intervals and per-survey rows;
MLflow records the dataset, its description and its quality report (survey coverage among it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_detector_trains_and_reports_against_its_baselines(obs_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "astrobio.train", "--model", "detector", "--data", str(obs_store),
                           "--max-epochs", "1", "--output-dir", str(run), "--set", "trainer.progress_bar=false",
                           "--set", "model.options.bootstrap=50", "--set", "trainer.logger=mlflow"],
                          capture_output=True, text=True, env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"})
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
    _mlflow_records_the_data(run, obs_store)


def _mlflow_records_the_data(run: Path, store: Path) -> None:
    mlflow = __import__("pytest").importorskip("mlflow")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "astrobio-detector"]
    (found,) = client.search_runs([experiment.experiment_id])
    inputs = found.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == store.name and inputs[0].dataset.source_type == "local"
    artifacts = Path(found.info.artifact_uri.removeprefix("file://")) / "data"
    description = json.loads((artifacts / "description.json").read_text())
    assert description["kind"] == "observation" and description["summary"]["n_patches"] > 0
    quality = json.loads((artifacts / "quality.json").read_text())
    results = {r["expectation"]: r for r in quality["results"]}
    coverage = results["expect_survey_coverage"]["observed_value"]
    assert results["expect_survey_coverage"]["success"] and any(k.startswith("ZTF") for k in coverage)
    assert found.data.tags["data.quality"] == ("passed" if quality["success"] else "failed")
