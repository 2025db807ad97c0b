"""`train(cfg)`: the one function from a config to a trained, evaluated, reported run, for every
model (`cfg.model.name`; the model-specific parts are its task, see `astrobio.train.tasks`).
`python -m astrobio.train`, `--mode full` (astrobio.train.pipeline) and any caller that trains
in a loop use it; it keeps no state between calls (a fresh task, history and Lightning Trainer
each time; the global deterministic-algorithms flag is restored on return).

Steps: find the task (an unavailable optional library is a DependencyError here); open and
check its data; resolve accelerator and precision (logged; never silently downgraded); seed;
let the task build its data module and LightningModule (with its baseline); build the
Lightning Trainer (the only place astrobio constructs one: atomic checkpoint IO, early stopping
on the task's metric, TensorBoard, DDP when devices x nodes > 1); fit, resuming exactly when
asked; then on rank 0 load the best checkpoint, let the task evaluate it beside its baseline on
the held-out split(s), and write the summary and plots.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger

from .._fsutil import atomic_write
from .._optional import require
from ..errors import ConfigError, DataNotFoundError
from ..data import rearm_worker_failure_signal
from ..registry import require_extra as require_registry
from .data_record import log_data_mlflow
from .location import resolve_location, store_identity
from .checkpoint import AtomicCheckpointIO, RunCheckpoints, RunSection, load_checkpoint, restore_weights
from .config import TrainConfig
from .evaluation import Evaluation
from .guards import GradientGuard, loader_failures
from .history import RunHistory
from .report import write_summary
from .resolve import config_from_dict, migrate_saved_options, model_name
from .resources import ResourceMonitor, format_block, mlflow_metrics
from .tasks import BuildContext, TrainedModule, get_task

__all__ = ["RunResult", "train", "resolve_checkpoint", "resolve_hardware"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced: its folder and checkpoints, the history, and (on rank 0) the summary
    (held-out metrics beside the baseline, under `summary["evaluation"]`) and printed table."""

    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: dict[str, Any]
    summary: dict[str, Any] | None  # rank 0 only
    table: str | None               # the printed summary table (rank 0 only)
    evaluation: Evaluation | None = None  # the task's typed held-out result (rank 0 only)

    @property
    def metrics(self) -> dict[str, Any] | None:
        """The held-out evaluation (split -> metrics of the model and its baselines); rank 0 only."""
        return None if self.summary is None else self.summary.get("evaluation")


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or `<run folder>/checkpoints/last.ckpt`."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise DataNotFoundError("no checkpoint to resume from", path=str(p),
                                hint="Pass a .ckpt file or a run folder that has checkpoints/last.ckpt")
    return p


def resolve_hardware(cfg: TrainConfig) -> tuple[str, str, str]:
    """(accelerator, precision, reason). bf16 AMP on CUDA devices that support it, fp16 AMP (with a
    gradient scaler) on older CUDA devices, float32 on CPU; an explicit request that the hardware
    cannot honour is a ConfigError, never a silent downgrade."""
    t = cfg.trainer
    cuda = torch.cuda.is_available()
    if t.accelerator in ("gpu", "cuda") and not cuda:
        raise ConfigError("accelerator 'gpu' was requested but CUDA is not available")
    accelerator = "gpu" if t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and cuda) else "cpu"
    bf16 = accelerator == "gpu" and torch.cuda.is_bf16_supported()
    if t.precision == "auto":
        if accelerator == "gpu":
            name = torch.cuda.get_device_name(0)
            return (accelerator, "bf16-mixed", f"{name} supports bf16") if bf16 else \
                (accelerator, "16-mixed", f"{name} has no bf16; fp16 AMP with a gradient scaler")
        return accelerator, "32-true", "CPU: float32 (AMP is chosen automatically on CUDA only)"
    if t.precision == "16-mixed" and accelerator == "cpu":
        raise ConfigError("precision 16-mixed needs CUDA; on CPU use 32-true or bf16-mixed")
    if t.precision == "bf16-mixed" and accelerator == "gpu" and not bf16:
        raise ConfigError(f"{torch.cuda.get_device_name(0)} does not support bf16; use 16-mixed or 32-true")
    return accelerator, t.precision, "as requested"


def _run_dir(cfg: TrainConfig, resume: Path | None) -> Path:
    t = cfg.trainer
    if t.output_dir:
        run = Path(t.output_dir)
    elif resume is not None:
        run = resume.parent.parent
    elif os.environ.get("ASTROBIO_RUN_DIR"):
        run = Path(os.environ["ASTROBIO_RUN_DIR"])
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("pass --output-dir when launching with torchrun (every process must use the same run folder)")
    else:
        run = Path("runs") / f"{cfg.model.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if t.devices * t.num_nodes > 1:
            os.environ["ASTROBIO_RUN_DIR"] = str(run.resolve())  # Lightning's launcher re-runs this command
    run = run.resolve()
    if resume is None and any((run / "checkpoints").glob("*.ckpt")):
        raise ConfigError(f"{run} already holds a run's checkpoints; continue it with --resume {run} "
                          "or choose another --output-dir")
    return run


def _check_resumable(ckpt_path: Path, ckpt: dict[str, Any], cfg: TrainConfig) -> None:
    """The checkpoint was trained with the same model and the same model options (but those its
    options class lets a resumed run change, `RESUMABLE`). Options its config predates first take
    the values that reproduce its run (`resolve.migrate_saved_options`), also from Python."""
    saved = ckpt["astrobio"]["config"]
    trained = model_name(saved)
    if trained != cfg.model.name:
        raise ConfigError(f"{ckpt_path} was trained with --model {trained}, not --model {cfg.model.name}; "
                          f"resume it with --model {trained} (or without --model)")
    migrate_saved_options(cfg, saved)
    before = asdict(migrate_saved_options(config_from_dict(saved), saved).model.options)
    now = asdict(cfg.model.options)
    free = getattr(type(cfg.model.options), "RESUMABLE", frozenset())
    changed = sorted(k for k in before.keys() & now.keys() if before[k] != now[k] and k not in free)
    if changed:
        raise ConfigError(f"{ckpt_path} holds a {trained!r} model with "
                          f"{', '.join(f'{k}={before[k]}' for k in changed)}; this run asks for "
                          f"{', '.join(f'{k}={now[k]}' for k in changed)}: resume without changing the model")


def _logger(cfg: TrainConfig, run_dir: Path) -> Any:
    kind = cfg.trainer.logger
    if kind == "none":
        return False
    if kind == "csv":
        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    if kind == "mlflow":
        return _mlflow_logger(cfg, run_dir)
    require("tensorboard", alternative="or choose --set trainer.logger=csv / none")
    return TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)


def _mlflow_logger(cfg: TrainConfig, run_dir: Path) -> Any:
    """MLflow tracking, offline by default: a file store inside the run folder (`mlruns/`), no
    server. `MLFLOW_TRACKING_URI` points it at a server instead; credentials stay in MLflow's own
    environment variables and never reach the config, the logs or the checkpoints."""
    require("mlflow", alternative="or choose --set trainer.logger=tensorboard / csv / none")
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        uri = (run_dir / "mlruns").resolve().as_uri()
        # MLflow 3 refuses file stores unless opted in; a database backend would need sqlalchemy
        # and alembic for what is only an offline log beside the checkpoints.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MLFlowLogger(experiment_name=f"astrobio-{cfg.model.name}", run_name=run_dir.name, tracking_uri=uri)


@contextlib.contextmanager
def _deterministic(enabled: bool, cuda: bool) -> Iterator[None]:
    """torch deterministic algorithms for the run, restored afterwards. On CUDA some kernels
    (trilinear upsampling backward) have no deterministic version: warn instead of failing."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    if enabled:
        if cuda:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=cuda)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def train(cfg: TrainConfig, *, resume: str | Path | None = None, callbacks: Sequence[Any] = ()) -> RunResult:
    """Train, evaluate and report one run of model `cfg.model.name`. `resume`: a checkpoint (or
    run folder) to continue exactly; it must have been trained with the same model and options.
    Extra Lightning `callbacks` are appended (tests use this)."""
    launcher_dir = os.environ.get("ASTROBIO_RUN_DIR")
    try:
        with ResourceMonitor() as resources:  # its sampling thread stops on errors too
            return _train(cfg, resume, [resources, *callbacks], resources)
    finally:  # the run folder handed to Lightning's launched processes belongs to this run only
        if launcher_dir is None:
            os.environ.pop("ASTROBIO_RUN_DIR", None)


def _lineage() -> Any:
    """The registry's lineage module, through the optional-dependency door (astrobio[serve])."""
    require_registry()
    return importlib.import_module("astrobio.registry.lineage")


def _train(cfg: TrainConfig, resume: str | Path | None, callbacks: Sequence[Any], resources: ResourceMonitor) -> RunResult:
    started = time.perf_counter()
    cfg.validate()
    ckpt_path = resolve_checkpoint(resume) if resume is not None else None
    ckpt = load_checkpoint(ckpt_path) if ckpt_path is not None else None
    if ckpt is not None:
        _check_resumable(ckpt_path, ckpt, cfg)  # type: ignore[arg-type]
    task = get_task(cfg.model.name)
    registered = resolve_location(cfg, task)  # name@vN: the registry's checked store, of the task's kind
    identity = store_identity(cfg, task, task.open(cfg))  # the runner records kind, path, digest itself
    accelerator, precision, why = resolve_hardware(cfg)
    log.info("accelerator %s, precision %s (%s)", accelerator, precision, why)
    run_dir = _run_dir(cfg, ckpt_path)
    cfg.trainer.output_dir = str(run_dir)
    digest = identity.get("content_digest")
    if ckpt is not None:
        saved = ckpt["astrobio"]["meta"].get("store", {}).get("content_digest")
        if saved != digest:
            raise ConfigError(f"{ckpt_path} was trained on a different store (digest {saved}); "
                              f"{identity.get('path')} has {digest}: resuming would not continue the same run")

    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    history = RunHistory()
    built = task.build(cfg, BuildContext(hardware={"accelerator": accelerator, "precision": precision}, history=history))
    module = built.module
    module.allow_zero_length_dataloader_with_multiple_devices = True
    built.meta["store"] = {**built.meta.get("store", {}), **identity}  # what --resume checks, for every task
    if registered is not None:
        built.meta["data"] = registered.lineage  # the checkpoint says which version it saw

    checkpoints = RunCheckpoints(run_dir / "checkpoints", monitor=task.monitor, mode=task.mode,
                                 every_n_epochs=cfg.trainer.checkpoint_every_n_epochs,
                                 every_n_steps=cfg.trainer.checkpoint_every_n_steps)
    early = EarlyStopping(monitor=task.monitor, mode=task.mode, patience=cfg.trainer.patience, check_finite=True, strict=True)
    world = cfg.trainer.devices * cfg.trainer.num_nodes
    trainer = L.Trainer(
        accelerator=accelerator, devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes,
        strategy="ddp" if world > 1 else "auto", precision=cast(Any, precision), max_epochs=cfg.trainer.max_epochs,
        gradient_clip_val=cfg.optim.grad_clip or None, accumulate_grad_batches=cfg.optim.accumulate,
        callbacks=[early, checkpoints, GradientGuard(cfg.optim.grad_norm_limit, scaler_handles_non_finite=precision == "16-mixed"),
                   RunSection(cfg, built.meta, history), *callbacks],
        logger=_logger(cfg, run_dir), plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False, num_sanity_val_steps=0, log_every_n_steps=max(1, min(25, built.batches_per_epoch)),
        enable_progress_bar=cfg.trainer.progress_bar, enable_model_summary=cfg.trainer.progress_bar,
        default_root_dir=str(run_dir),
    )
    if trainer.world_size != world:
        raise ConfigError(f"the launcher started {trainer.world_size} processes but --devices x --num-nodes is {world}")
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / "config.yaml", "w") as f:
            f.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    with _deterministic(cfg.trainer.deterministic, accelerator == "gpu"), loader_failures(trainer, run_dir):
        rearm_worker_failure_signal()  # a previous run in this process may have disarmed it
        trainer.fit(module, datamodule=built.data, ckpt_path=str(ckpt_path) if ckpt_path else None)

    best = checkpoints.best_path if checkpoints.best_path.is_file() else None
    last = checkpoints.last_path if checkpoints.last_path.is_file() else None
    if not trainer.is_global_zero:
        return RunResult(run_dir, best, last, history.to_dict(), None, None, None)

    chosen = best or last
    if chosen is not None:
        restore_weights(module, load_checkpoint(chosen)["state_dict"])
    model = cast(TrainedModule, module).model
    model.to(module.device)
    model.eval()
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "model": cfg.model.name, "store": str(identity.get("path")), "store_digest": digest,
        "accelerator": accelerator, "precision": precision, "devices": cfg.trainer.devices, "num_nodes": cfg.trainer.num_nodes,
        "epochs_run": len(history.epochs), "best_epoch": checkpoints.best_epoch,
        "monitor": task.monitor, "mode": task.mode, "best_score": checkpoints.best_score,
        "stopped_early": bool(early.stopped_epoch), "wall_time_s": time.perf_counter() - started,
    }
    rearm_worker_failure_signal()  # fit's teardown put back the handler it found (see there)
    evaluation = task.evaluate(cfg, module, run_dir)
    summary.update(evaluation.summary_entries())
    summary["checkpoints"] = {"best": str(best) if best else None, "last": str(last) if last else None}
    summary["config"] = cfg.to_dict()
    if cfg.trainer.plots and history.epochs:
        summary["plots"] = task.plots(cfg, summary, history.to_dict(), run_dir)
    if registered is not None:
        summary["data"] = registered.lineage
    summary["wall_time_s"] = time.perf_counter() - started
    summary["resources"] = resources.stop()
    if isinstance(trainer.logger, MLFlowLogger):
        trainer.logger.log_metrics(mlflow_metrics(summary["resources"]))
        log_data_mlflow(trainer.logger, identity, registered)
    table = task.table(summary) + "\n" + format_block(summary["resources"])
    write_summary(run_dir, summary, table)
    if registered is not None:
        _lineage().record_run(registered.ref, str(run_dir), summary)
    return RunResult(run_dir, best, last, history.to_dict(), summary, table, evaluation)
