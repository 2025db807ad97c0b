"""`tune(model, trials)`: hyperparameter search with optuna over the one training function.

Each trial is a normal run of `astrobio.train.train` (same guards, checkpoints and held-out
evaluation) in `<study_dir>/trial-<n>`, with a callback that reports the task's validation metric
to the trial every epoch and stops a trial the pruner rejects. The study lives in a database
(the registry's SQLite file by default, `ASTROBIO_REGISTRY_URL` for PostgreSQL), so several
processes can run trials of one study and `resume=True` continues it after a crash: a trial left
RUNNING by a killed process stops sending heartbeats, is marked FAIL and re-queued once with the
same parameters (optuna's heartbeat + RetryHeartbeatStaleTrialCallback).

`trials` is the number of trials this process runs (optuna's n_trials): two processes with
`trials=3` on one study run 6. At the end: best.yaml, the best run beside the default config on
the held-out split, plots and a summary (see astrobio.tune.report). docs/tuning.md.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from .._optional import require
from .._redact import redact
from ..datasets import data_home
from ..errors import AstrobioError, ConfigError, first_line
from ..train.config import TrainConfig
from ..train.resolve import apply_overrides, resolve
from ..train.resources import ResourceMonitor
from .report import TuneResult, finish, held_out
from .space import suggest, tunable

__all__ = ["tune", "PruningCallback", "storage_url", "require_optuna", "base_config", "HEARTBEAT_S", "GRACE_S"]

log = logging.getLogger(__name__)

#: seconds between a running trial's heartbeats, and the silence after which it counts as dead
HEARTBEAT_S, GRACE_S = 30, 120


def require_optuna() -> Any:
    """`import optuna`, or one DependencyError line naming the extra."""
    return require("optuna")


class PruningCallback(Callback):
    """Reports the monitored validation metric to the optuna trial after each validation and
    raises optuna.TrialPruned when the pruner says so. (optuna-integration's Lightning callback
    does the same; this one avoids its dependency and pinning; trials are single-process, so no
    DDP broadcast is needed.)"""

    def __init__(self, trial: Any, monitor: str) -> None:
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        if not math.isfinite(value):
            return  # the trainer's guards stop a non-finite run as a failure, not a pruned trial
        epoch = trainer.current_epoch
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise require_optuna().TrialPruned(f"pruned at epoch {epoch + 1} ({self.monitor} {value:.4g})")


def storage_url(explicit: str | None = None) -> str:
    """The study database: `explicit`, else $ASTROBIO_REGISTRY_URL, else the registry's SQLite file."""
    url = explicit or os.environ.get("ASTROBIO_REGISTRY_URL")
    if url:
        return url
    data_home().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_home() / 'registry.db').resolve()}"


def _storage(url: str, heartbeat: tuple[int, int]) -> Any:
    optuna = require_optuna()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    # SQLite serialises writers: wait for the lock instead of failing when processes share a study
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        return RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat[0], grace_period=heartbeat[1],
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except (optuna.exceptions.StorageInternalError, ImportError, ValueError, RuntimeError) as e:
        hint = ("; it holds another application's alembic history (alembic_version): give that application its own "
                "version table, or pass --storage") if "no longer compatible" in str(e) else ""
        raise ConfigError(f"cannot open the study database {redact(url)}: {first_line(e)}{hint}") from None


def _open_study(optuna: Any, name: str, storage: Any, url: str, direction: str, resume: bool, model: str,
                pruner: Any, sampler: Any) -> Any:
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=resume,
                                    pruner=pruner, sampler=sampler)
    except optuna.exceptions.DuplicatedStudyError:
        raise ConfigError(f"study {name!r} already exists in {redact(url)}; continue it with --resume "
                          "or choose another --study name") from None
    made_for = study.user_attrs.get("astrobio.model")
    if made_for is not None and made_for != model:
        raise ConfigError(f"study {name!r} tunes --model {made_for}, not {model}; choose another --study name")
    if study.direction.name.lower() != direction:
        raise ConfigError(f"study {name!r} {study.direction.name.lower()}imizes, but {model}'s metric is to {direction}imize")
    return study


def base_config(model: str, overrides: Sequence[Mapping[str, Any]] = ()) -> TrainConfig:
    """The model's defaults, quiet trials (no progress bars, no plots), then `overrides` in order."""
    cfg = resolve([{"trainer": {"progress_bar": False, "plots": False}}, *overrides], model=model)
    if cfg.trainer.devices * cfg.trainer.num_nodes != 1:
        raise ConfigError("tune runs single-process trials (devices 1, num_nodes 1); run several tune processes "
                          "on one --study instead")
    return cfg.validate()


@contextlib.contextmanager
def _env(values: Mapping[str, str | None]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is not None:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _mlflow_parent(study: Any, study_dir: Path, model: str) -> tuple[Any, str, str]:
    """(client, tracking uri, parent run id): the study's MLflow run, shared by every process
    of the study (its id is kept in the study); trials nest under it through the
    `mlflow.parentRunId` tag, which MLflow's `MLFLOW_RUN_CONTEXT` adds to every run created."""
    MlflowClient = require("mlflow.tracking").MlflowClient
    uri = os.environ.get("MLFLOW_TRACKING_URI") or (study_dir / "mlruns").resolve().as_uri()
    with _env({"MLFLOW_ALLOW_FILE_STORE": os.environ.get("MLFLOW_ALLOW_FILE_STORE", "true")}):
        client = MlflowClient(uri)
        run_id = study.user_attrs.get("astrobio.mlflow_parent")
        if run_id is None or study.user_attrs.get("astrobio.mlflow_uri") != uri:
            name = f"astrobio-{model}"
            exp = client.get_experiment_by_name(name)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
            run_id = client.create_run(exp_id, run_name=study.study_name, tags={"astrobio.study": study.study_name}).info.run_id
            study.set_user_attr("astrobio.mlflow_parent", run_id)
            study.set_user_attr("astrobio.mlflow_uri", uri)
    return client, uri, run_id


def tune(model: str, trials: int, *, timeout: float | None = None, study: str | None = None, storage: str | None = None,
         resume: bool = False, overrides: Sequence[Mapping[str, Any]] = (), space: Mapping[str, Any] | None = None,
         output_dir: str | Path | None = None, pruner: Any = None, sampler: Any = None,
         heartbeat: tuple[int, int] = (HEARTBEAT_S, GRACE_S), compare_default: bool = True) -> TuneResult:
    """Run `trials` trials of `model` (optuna study `study`, default `<model>-tune`) and report.

    overrides: config layers (YAML layout) applied over the model's defaults before each
    trial's parameters; space: YAML search-space overrides (see `astrobio.tune.space`); pruner/sampler:
    optuna objects (default MedianPruner(n_startup_trials=5, n_warmup_steps=2), TPE);
    heartbeat: (interval, grace) seconds for detecting trials of killed processes;
    compare_default: also train the default config once into `<study_dir>/default`.
    """
    from ..train.tasks import get_task
    from ..train.trainer import train

    optuna = require_optuna()
    tunable(model)  # ConfigError for an unknown model or one without a search space
    if trials < 1 or (timeout is not None and timeout <= 0):
        raise ConfigError("--trials must be >= 1 and --timeout > 0")
    task = get_task(model)
    base = base_config(model, overrides)
    name = study or f"{model}-tune"
    url = storage_url(storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        db = _storage(url, heartbeat)
        pruner = pruner if pruner is not None else optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
        the_study = _open_study(optuna, name, db, url, task.mode + "imize", resume, model, pruner, sampler)
        study_dir = Path(output_dir or the_study.user_attrs.get("astrobio.study_dir") or Path("runs") / name).resolve()
        if "astrobio.model" not in the_study.user_attrs:
            if any(study_dir.glob("trial-*")):
                raise ConfigError(f"{study_dir} holds trials of an earlier study; choose another --output-dir or remove it")
            the_study.set_user_attr("astrobio.model", model)
            the_study.set_user_attr("astrobio.study_dir", str(study_dir))
            the_study.set_user_attr("astrobio.space", json.loads(json.dumps(dict(space or {}))))
        elif the_study.user_attrs.get("astrobio.space", {}) != json.loads(json.dumps(dict(space or {}))):
            # optuna cannot change a parameter's distribution within a study
            raise ConfigError(f"study {name!r} was started with search-space overrides "
                              f"{the_study.user_attrs.get('astrobio.space') or 'none'}; pass the same --space to continue it")
        study_dir.mkdir(parents=True, exist_ok=True)
        optuna.storages.fail_stale_trials(the_study)

        mlflow = _mlflow_parent(the_study, study_dir, model) if base.trainer.logger == "mlflow" else None
        objective = _objective(train, task, base, space or {}, study_dir, mlflow)
        log.info("study %s in %s: %d trial(s) of %s; runs in %s", name, redact(url), trials, model, study_dir)
        the_study.optimize(objective, n_trials=trials, timeout=timeout, gc_after_trial=True,
                           catch=(AstrobioError, torch.OutOfMemoryError))
        optuna.storages.fail_stale_trials(the_study)
    return finish(the_study, task, base, study_dir, redact(url), train, compare_default=compare_default, mlflow=mlflow)


def _objective(train: Any, task: Any, base: TrainConfig, space: Mapping[str, Any], study_dir: Path, mlflow: Any) -> Any:
    def objective(trial: Any) -> float:
        params = suggest(trial, task.name, space)
        cfg = copy.deepcopy(base)
        apply_overrides(cfg, params)
        cfg.trainer.output_dir = str(study_dir / f"trial-{trial.number}")
        cfg.validate()
        trial.set_user_attr("run_dir", cfg.trainer.output_dir)
        trial.set_user_attr("config", json.loads(json.dumps(cfg.to_dict())))
        monitor = ResourceMonitor()
        tags = None if mlflow is None else {
            "MLFLOW_TRACKING_URI": mlflow[1], "MLFLOW_RUN_CONTEXT": json.dumps(
                {"mlflow.parentRunId": mlflow[2], "astrobio.trial": str(trial.number)})}
        try:
            with _env(tags or {}):
                result = train(cfg, callbacks=[PruningCallback(trial, task.monitor), monitor])
        finally:
            report = monitor.stop() if monitor.started is not None else {}
            trial.set_user_attr("resources", {k: v for k, v in report.items() if k != "unavailable"})
        summary = result.summary or {}
        score = summary.get("best_score")
        if score is None or not math.isfinite(float(score)):
            raise AstrobioError(f"trial {trial.number} ended without a finite {task.monitor}")
        trial.set_user_attr("held_out", held_out(task, summary))
        return float(score)

    return objective

