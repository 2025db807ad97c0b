"""`astrobio tune`: studies of real (small) training runs in a SQLite database: a 3-trial study
with its outputs, failed and pruned trials recorded as such, resume after SIGKILL, two processes
on one study, YAML search spaces, MLflow nesting, and the one-line error without optuna."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna  # the dev extra has it: a missing one fails, never skips
import pytest

from astrobio.errors import ConfigError  # noqa: E402
from astrobio.tune.space import check_space, suggest  # noqa: E402
from astrobio.tune import storage_url, tune  # noqa: E402
from train_fixtures import build_climate_fixture  # noqa: E402

# a small model, two epochs: each trial takes a few seconds on a CPU
SMALL = {"model": {"channels": [16, 8], "hidden": 16}, "data": {"batch_size": 8},
         "trainer": {"max_epochs": 2, "logger": "none", "checkpoint_every_n_epochs": 1}}
SPACE = {"model.options.hidden": {"choices": [16, 32]}, "model.options.channels": {"choices": [[16, 8]]}, "model.options.skip_channels": None,
         "data.batch_size": None}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def climate_store(tmp_path_factory):
    return build_climate_fixture(tmp_path_factory.mktemp("store") / "climate.zarr", planets=4, split=(2, 1, 1))


def _layers(store, **trainer):
    small = json.loads(json.dumps(SMALL))
    small["data"]["store"] = str(store)
    small["trainer"].update(trainer)
    return [small]


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _states(url: str, name: str) -> list[tuple[int, str]]:
    study = optuna.load_study(study_name=name, storage=url)
    return [(t.number, t.state.name) for t in study.get_trials()]


def test_three_trial_study_writes_best_config_comparison_plots_and_summary(climate_store, tmp_path):
    out = tmp_path / "study"
    result = tune("datacube", 3, study="s3", storage=_db(tmp_path), overrides=_layers(climate_store), space=SPACE,
                  output_dir=out, sampler=optuna.samplers.TPESampler(seed=0))
    assert result.counts["complete"] + result.counts["pruned"] == 3 and result.counts["fail"] == 0
    assert result.best is not None and result.best["value"] > 0
    for n in range(3):
        assert (out / f"trial-{n}" / "config.yaml").is_file()
    best = (out / f"trial-{result.best['number']}")
    assert json.loads((best / "summary.json").read_text())["best_score"] == pytest.approx(result.best["value"])
    import yaml

    cfg = yaml.safe_load((out / "best.yaml").read_text())
    assert cfg["model"]["options"]["hidden"] == result.best["params"]["model.options.hidden"] and cfg["trainer"]["output_dir"] is None
    assert (out / "default" / "summary.json").is_file() and result.default["skill"] is not None
    assert Path(result.plots["optimization_history"]).is_file()
    assert Path(result.plots["parallel_coordinate"]).is_file()
    assert "param_importances" in result.plots
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == result.counts and len(summary["trials"]) == 3
    assert all(t["resources"]["wall_s"] > 0 for t in summary["trials"])
    text = (out / "summary.txt").read_text()
    assert "best trial" in text and "skill vs baseline" in text and "default" in text
    # the same name again without --resume is a one-line ConfigError; with resume the study grows
    with pytest.raises(ConfigError, match="--resume"):
        tune("datacube", 1, study="s3", storage=_db(tmp_path), overrides=_layers(climate_store), space=SPACE, output_dir=out)
    again = tune("datacube", 1, study="s3", storage=_db(tmp_path), overrides=_layers(climate_store), space=SPACE,
                 resume=True, compare_default=False)
    assert again.study_dir == out.resolve() and sum(again.counts.values()) == 4


def test_failing_trial_is_recorded_and_the_study_goes_on(climate_store, tmp_path):
    # an absurd learning rate: the loss or the gradient norm becomes non-finite -> the guards stop the run
    space = {**SPACE, "optim.lr": {"choices": [1.0e12]}, "optim.grad_clip": {"choices": [0.0]}}
    result = tune("datacube", 2, study="bad", storage=_db(tmp_path), overrides=_layers(climate_store), space=space,
                  output_dir=tmp_path / "bad", compare_default=False)
    assert result.counts["fail"] == 2 and result.best is None
    assert "no complete trial" in result.table


def test_pruning_stops_a_bad_trial(climate_store, tmp_path):
    # trial 0 learns; trial 1's lr is tiny, so its val RMSE stays above trial 0's at every epoch
    from optuna.pruners import MedianPruner

    url = _db(tmp_path)
    layers = _layers(climate_store, max_epochs=4, patience=10)
    optuna.create_study(study_name="prune", storage=url).enqueue_trial({"optim.lr": 5e-3})
    study = optuna.load_study(study_name="prune", storage=url)
    study.enqueue_trial({"optim.lr": 1e-7})
    result = tune("datacube", 2, study="prune", storage=url, resume=True, overrides=layers,
                  space={**SPACE, "model.options.hidden": None, "optim.weight_decay": None,
                         "optim.lr": {"low": 1e-8, "high": 1e-2, "log": True}}, output_dir=tmp_path / "p",
                  pruner=MedianPruner(n_startup_trials=1, n_warmup_steps=0), compare_default=False)
    assert _states(url, "prune") == [(0, "COMPLETE"), (1, "PRUNED")]
    assert result.counts["pruned"] == 1


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-c", "import sys; from astrobio.tune.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def _cli_args(store, out, url, study, trials, *extra):
    return ["--model", "datacube", "--trials", str(trials), "--study", study, "--storage", url, "--output-dir", str(out),
            "--set", f"data.store={store}", "--set", "model.options.channels=[16, 8]", "--set", "model.options.hidden=16",
            "--set", "trainer.logger=none", "--set", "trainer.checkpoint_every_n_epochs=1", "--no-default", *extra]


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_duplicates_no_trial(climate_store, tmp_path):
    url, out = _db(tmp_path), tmp_path / "k"
    space = tmp_path / "space.yaml"
    space.write_text("model.options.hidden: {choices: [16, 32]}\nmodel.options.channels: {choices: [[16, 8]]}\n"
                     "model.options.skip_channels: null\ndata.batch_size: null\n")
    args = _cli_args(climate_store, out, url, "kill", 3, "--space", str(space), "--heartbeat", "1",
                     "--set", "trainer.max_epochs=40", "--set", "trainer.patience=40")
    proc = subprocess.Popen(_cli(args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # kill -9 while trial 0 is running (it has written a checkpoint)
            if any((out / "trial-0" / "checkpoints").glob("*.ckpt")):
                break
            time.sleep(0.2)
        else:
            pytest.fail("trial 0 never started")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert _states(url, "kill") == [(0, "RUNNING")]
    time.sleep(4.5)  # past the grace period (4 heartbeats): the trial's process is known dead
    args = [a if a != "trainer.max_epochs=40" else "trainer.max_epochs=2" for a in args]
    rc = subprocess.run(_cli([*args, "--resume"]), env=_env(), capture_output=True, text=True, timeout=600)
    assert rc.returncode == 0, rc.stderr[-2000:]
    study = optuna.load_study(study_name="kill", storage=url)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[0].state.name == "FAIL"  # the killed trial: recorded, not lost
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retry) == 1 and retry[0].params == trials[0].params  # re-run once with the same parameters
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials[1:])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["fail"] == 1 and summary["counts"]["running"] == 0


@pytest.mark.slow
def test_two_processes_share_one_study(climate_store, tmp_path):
    url, out = _db(tmp_path), tmp_path / "shared"
    tune("datacube", 1, study="shared", storage=url, overrides=_layers(climate_store), space=SPACE, output_dir=out,
         compare_default=False)
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(SPACE))  # JSON is YAML
    args = _cli_args(climate_store, out, url, "shared", 2, "--resume", "--space", str(space))
    wrong = subprocess.run(_cli(_cli_args(climate_store, out, url, "shared", 1, "--resume")), env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "pass the same --space" in wrong.stderr.strip().splitlines()[-1]
    procs = [subprocess.Popen(_cli([*args, "--seed", str(seed)]), env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    states = _states(url, "shared")
    assert [n for n, _ in states] == list(range(5))  # 1 + 2 + 2 trials, unique numbers
    assert all(s in ("COMPLETE", "PRUNED") for _, s in states)
    assert sorted(p.name for p in out.glob("trial-*")) == [f"trial-{n}" for n in range(5)]


def test_mlflow_trials_are_nested_runs_under_the_study_run(climate_store, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "ml"
    tune("datacube", 2, study="ml", storage=_db(tmp_path), overrides=_layers(climate_store, logger="mlflow"),
         space=SPACE, output_dir=out, compare_default=False)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("astrobio-datacube")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("astrobio.study") == "ml"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["astrobio.trial"] for r in children) == ["0", "1"]
    assert all(r.data.metrics.get("val/rmse", 0) > 0 for r in children)
    assert parent.data.metrics["best_value"] > 0 and "MLFLOW_RUN_CONTEXT" not in os.environ


def test_search_space_yaml_replaces_adds_and_drops():
    study = optuna.create_study()
    trial = study.ask()
    space = check_space({"optim.lr": {"low": 1e-4, "high": 1e-3, "log": True}, "model.options.hidden": None,
                         "optim.param_noise": {"low": 0.0, "high": 0.1}, "data.batch_size": {"low": 4, "high": 16, "step": 4}})
    values = suggest(trial, "datacube", space)
    assert 1e-4 <= values["optim"]["lr"] <= 1e-3 and "hidden" not in values["model"]["options"]
    assert values["data"]["batch_size"] in (4, 8, 12, 16) and 0 <= values["optim"]["param_noise"] <= 0.1
    assert values["model"]["options"]["channels"] in ([16, 16, 8], [32, 16, 8], [32, 32, 16, 8], [64, 32, 16, 8])
    for bad in ({"lr": {"low": 1}}, {"optim.lr": {"low": 1, "high": 0}}, {"optim.lr": {"low": 0, "high": 1, "log": True}},
                {"optim.lr": {"choices": []}}, {"optim.lr": 3}):
        with pytest.raises(ConfigError):
            check_space(bad)


def test_storage_defaults_to_the_registry_database(monkeypatch, tmp_path):
    monkeypatch.setenv("ASTROBIO_HOME", str(tmp_path))
    monkeypatch.delenv("ASTROBIO_REGISTRY_URL", raising=False)
    assert storage_url() == f"sqlite:///{tmp_path.resolve() / 'registry.db'}"
    monkeypatch.setenv("ASTROBIO_REGISTRY_URL", "postgresql://u@localhost/astrobio")
    assert storage_url() == "postgresql://u@localhost/astrobio"


def test_cli_errors_are_one_line(tmp_path, capsys):
    from astrobio.tune.cli import main

    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {low: 1, high: 0}\n")
    assert main(["--trials", "1", "--space", str(space), "--storage", _db(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("astrobio: error: ConfigError:") and "low < high" in err[0]


def test_without_optuna_tune_is_one_dependency_error_and_training_still_imports(tmp_path):
    code = ("import sys; sys.modules['optuna'] = None\n"
            "import astrobio, astrobio.train, astrobio.train.cli\n"
            "from astrobio.tune.cli import main\n"
            "sys.exit(main(['--trials', '1']))")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "DependencyError" in lines[0] and 'pip install "astrobio[tune]"' in lines[0]
