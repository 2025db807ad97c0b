"""Optional experiment tracking: MLflow writes an offline file store inside the run folder with the
run's metrics; without mlflow installed, asking for it is a one-line DependencyError."""

from __future__ import annotations

import sys

import pytest

from astrobio.train.cli import main
from train_fixtures import build_climate_fixture

SMALL = ["--set", "model.options.channels=[16, 8]", "--set", "model.options.hidden=16", "--set", "trainer.progress_bar=false",
         "--set", "trainer.plots=false"]


@pytest.fixture(scope="module")
def climate_store(tmp_path_factory):
    return build_climate_fixture(tmp_path_factory.mktemp("store") / "climate.zarr", planets=4, split=(2, 1, 1))


def test_mlflow_logger_records_metrics_offline_in_the_run_folder(climate_store, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    rc = main(["--store", str(climate_store), "--output-dir", str(out), "--max-epochs", "2",
               "--set", "trainer.logger=mlflow", *SMALL])
    assert rc == 0
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(out / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("astrobio-datacube")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "val/rmse")
    assert len(history) == 2 and all(m.value > 0 for m in history)


def test_mlflow_missing_is_a_one_line_dependency_error(climate_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    rc = main(["--store", str(climate_store), "--output-dir", str(tmp_path / "run"), "--max-epochs", "1",
               "--set", "trainer.logger=mlflow", *SMALL])
    assert rc != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert 'pip install "astrobio[track]"' in err.strip().splitlines()[-1]  # the error line (after INFO logs)
