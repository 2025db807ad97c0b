"""Lineage: `--data NAME@vN` trains on a registered version and the run says which one it saw
(summary, checkpoint, the registry's list of runs); a version whose store changed is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from astrobio import DataNotFoundError, IntegrityError
from astrobio.registry import open_registry
from astrobio.train.checkpoint import load_checkpoint
from astrobio.train.cli import main


@pytest.fixture
def registered(climate_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    monkeypatch.setenv("ASTROBIO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASTROBIO_REGISTRY_URL", raising=False)
    store = tmp_path / "slice.zarr"
    shutil.copytree(climate_slice, store)
    version = open_registry().register(store, "slice")
    assert version["status"] == "ready"
    return version["ref"], store


def _train(ref: str, out: Path) -> int:
    return main(["--data", ref, "--max-epochs", "1", "--output-dir", str(out), "--batch-size", "4",
                 "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "trainer.plots=false"])


def test_a_run_records_the_version_it_trained_on(registered: tuple[str, Path], tmp_path: Path) -> None:
    ref, store = registered
    out = tmp_path / "run"
    assert _train(ref, out) == 0
    summary = json.loads((out / "summary.json").read_text())
    version = open_registry().version(ref)
    assert summary["data"] == {"ref": ref, "digest": version["digest"], "uri": str(store)}
    assert summary["store"] == str(store) and summary["store_digest"] == version["digest"]
    meta = load_checkpoint(out / "checkpoints" / "last.ckpt")["astrobio"]["meta"]
    assert meta["data"]["ref"] == ref and meta["data"]["digest"] == version["digest"]
    assert [r["run_dir"] for r in version["runs"]] == [str(out)]


def test_a_changed_store_is_refused(registered: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ref, store = registered
    chunk = next(p for p in sorted((store / "cubes" / "c").rglob("*")) if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    assert _train(ref, tmp_path / "run") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ref.split("@")[0] in err[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_unknown_version_is_one_line(registered: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _train("slice@v9", tmp_path / "run") != 0
    assert "slice@v9" in capsys.readouterr().err


def test_the_library_errors_are_astrobio_errors(registered: tuple[str, Path]) -> None:
    with pytest.raises((DataNotFoundError, IntegrityError)):
        open_registry().load("slice@v9")


def test_with_mlflow_the_run_is_searchable_by_its_dataset(registered: tuple[str, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    ref, store = registered
    out = tmp_path / "run"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["--data", ref, "--max-epochs", "1", "--output-dir", str(out), "--batch-size", "4",
                 "--set", "trainer.progress_bar=false", "--set", "trainer.logger=mlflow", "--set", "trainer.plots=false"]) == 0
    client = mlflow.MlflowClient(tracking_uri=(out / "mlruns").as_uri())
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    inputs = run.inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.source_type) for i in inputs] == [(ref, "local")]
    assert json.loads(inputs[0].dataset.source)["uri"] == str(store)
    assert any(k.startswith("resources/") for k in run.data.metrics)  # the run's resources, logged too
