"""`train(cfg)`: one entry point from a config to a trained, evaluated, reported run.

Steps: open the store (the default dataset's climate part unless `data.store` is given) and
check its splits; resolve accelerator and precision (logged; never silently downgraded); seed;
compute the climatology baseline on the train split; build the model (its `base` starts at the
climatology) and the Lightning Trainer (atomic checkpoint IO, early stopping, TensorBoard, DDP
when devices x nodes > 1); fit, resuming exactly when asked; then on rank 0 evaluate the best
checkpoint and the baseline on the held-out splits and write the summary and plots.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..data import BatchIndexSampler
from ..errors import ConfigError, DataNotFoundError, DependencyError
from ..store import Store, open_store
from .checkpoint import AtomicCheckpointIO, RunCheckpoints, load_checkpoint
from .config import TrainConfig
from .datamodule import Normalization, StoreDataModule, climatology
from .guards import GradientGuard, loader_failures, preflight

__all__ = ["RunResult", "train", "resolve_checkpoint", "resolve_hardware"]

log = logging.getLogger(__name__)

MONITOR = "val/rmse"


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    history: dict[str, Any]
    summary: dict[str, Any] | None  # rank 0 only
    table: str | None               # the printed summary table (rank 0 only)


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


def _open(cfg: TrainConfig) -> Store:
    if cfg.data.store:
        store = open_store(cfg.data.store)
    else:
        store = open_store(_default_climate_store())
    for split in ("train", "val"):
        store.samples(split)  # unknown or empty split: ConfigError / DataNotFoundError
    if cfg.data.verify:
        preflight(store)  # every chunk and the digests, before anything trains
    return store


def _default_climate_store(wait_s: float = 1800.0) -> Path:
    """The default climate store, built (or confirmed up to date) by local rank 0 only: under
    torchrun the other processes of a node wait for it instead of racing to build it too."""
    from ..datasets import default_part

    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        return default_part("climate")
    from ..datasets import part_path

    path = part_path("climate")
    deadline = time.monotonic() + wait_s
    while True:
        if (path / "zarr.json").is_file():
            try:
                open_store(path)
                return path
            except (DataNotFoundError, OSError):
                pass
        if time.monotonic() > deadline:
            raise DataNotFoundError(f"local rank 0 did not finish building the default climate store in {wait_s:.0f} s",
                                    path=str(path), hint="Build it first: astrobio datasets build default --parts climate")
        time.sleep(2.0)


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


def _options(model: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in model.items() if k != "name") + ")"


def _physics(cfg: TrainConfig, store: Store, norm: Normalization) -> Any:
    if not cfg.physics.enabled:
        return None
    from ..models.physics import PhysicsLoss

    names = [v.name for v in store.variables]
    missing = [v for v in ("ta", "hus") if v not in names]
    if missing:
        raise ConfigError(f"--physics-constraints needs variables ta and hus; the store lacks {missing}")
    level = store.manifest.get("coords", {}).get("level", {})
    sigma = level.get("values")
    if level.get("name") != "sigma" or not sigma or len(sigma) != store.sample_shape[1]:
        raise ConfigError("--physics-constraints needs the store's level coordinate as sigma values (coords.level)")
    return PhysicsLoss(torch.as_tensor(norm.mean), torch.as_tensor(norm.scale), sigma, ta_index=names.index("ta"), hus_index=names.index("hus"),
                       humidity_weight=cfg.physics.humidity_weight, stability_weight=cfg.physics.stability_weight,
                       kappa=cfg.physics.kappa)


def _logger(cfg: TrainConfig, run_dir: Path) -> Any:
    kind = cfg.trainer.logger
    if kind == "none":
        return False
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    if kind == "mlflow":
        return _mlflow_logger(cfg, run_dir)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise DependencyError("TensorBoard logging needs the tensorboard package: pip install tensorboard "
                              "(or choose --set trainer.logger=csv / none)") from None
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)


def _mlflow_logger(cfg: TrainConfig, run_dir: Path) -> Any:
    """MLflow tracking, offline by default: a file store inside the run folder (`mlruns/`), no
    server. `MLFLOW_TRACKING_URI` points it at a server instead; credentials stay in MLflow's own
    environment variables and never reach the config, the logs or the checkpoints."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise DependencyError('MLflow logging needs mlflow: pip install "astrobio[track]" '
                              "(or choose --set trainer.logger=tensorboard / csv / none)") from None
    from lightning.pytorch.loggers import MLFlowLogger

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
    """Train, evaluate and report one run. `resume`: a checkpoint (or run folder) to continue
    exactly. Extra Lightning `callbacks` are appended (tests use this)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    from ..models import build_model
    from .module import EmulatorModule

    started = time.perf_counter()
    cfg.validate()
    ckpt_path = resolve_checkpoint(resume) if resume is not None else None
    ckpt = load_checkpoint(ckpt_path) if ckpt_path is not None else None
    store = _open(cfg)
    accelerator, precision, why = resolve_hardware(cfg)
    log.info("accelerator %s, precision %s (%s)", accelerator, precision, why)
    run_dir = _run_dir(cfg, ckpt_path)
    cfg.trainer.output_dir = str(run_dir)
    cfg.data.store = str(store.path.resolve())
    digest = store.manifest.get("content_digest")
    if ckpt is not None:
        trained = ckpt["astrobio"]["config"]["model"]
        if trained != asdict(cfg.model):
            raise ConfigError(f"{ckpt_path} holds a {trained['name']!r} model {_options(trained)}; this run asks for "
                              f"{cfg.model.name!r} {_options(asdict(cfg.model))}: resume without changing the model")
        saved = ckpt["astrobio"]["meta"].get("store", {}).get("content_digest")
        if saved != digest:
            raise ConfigError(f"{ckpt_path} was trained on a different store (digest {saved}); "
                              f"{store.path} has {digest}: resuming would not continue the same run")

    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    norm = Normalization.from_store(store, cfg.data.normalize)
    data = StoreDataModule(store, cfg.data, cfg.trainer.seed)
    clim = climatology(store, data.train_indices, cfg.data.normalize)
    variables = [v.name for v in store.variables]
    if not store.params:
        raise ConfigError(f"{store.path} has no parameter table; the emulator maps parameters to cubes")
    param_names = [p.name for p in store.params]
    param_index = None
    if cfg.data.params is not None:
        unknown = [n for n in cfg.data.params if n not in param_names]
        if unknown or not cfg.data.params:
            raise ConfigError(f"data.params names {unknown or 'nothing'}; the store's parameters are {param_names}")
        param_index = [param_names.index(n) for n in cfg.data.params]
    n_inputs = len(param_index) if param_index is not None else len(param_names)
    model: Any = build_model(cfg.model.name, n_inputs, store.sample_shape, **cfg.model.options())
    if hasattr(model, "init_base"):
        model.init_base(torch.as_tensor(clim, dtype=torch.float32))
    physics = _physics(cfg, store, norm)
    meta = {
        "store": {"path": str(store.path), "content_digest": digest, "n_samples": store.n_samples,
                  "sample_shape": list(store.sample_shape)},
        "variables": variables, "params": param_names, "inputs": cfg.data.params or param_names,
        "normalize": cfg.data.normalize,
        "accelerator": accelerator, "precision": precision,
    }
    module = EmulatorModule(model, cfg, physics=physics, meta=meta, param_index=param_index)
    module.allow_zero_length_dataloader_with_multiple_devices = True

    ckpt_dir = run_dir / "checkpoints"
    checkpoints = RunCheckpoints(ckpt_dir, monitor=MONITOR, every_n_epochs=cfg.trainer.checkpoint_every_n_epochs,
                                 every_n_steps=cfg.trainer.checkpoint_every_n_steps)
    early = EarlyStopping(monitor=MONITOR, mode="min", patience=cfg.trainer.patience, check_finite=True, strict=True)
    world = cfg.trainer.devices * cfg.trainer.num_nodes
    per_rank = len(BatchIndexSampler(data.train_indices, cfg.data.batch_size, num_replicas=world))
    trainer = L.Trainer(
        accelerator=accelerator, devices=cfg.trainer.devices, num_nodes=cfg.trainer.num_nodes,
        strategy="ddp" if world > 1 else "auto", precision=cast(Any, precision), max_epochs=cfg.trainer.max_epochs,
        gradient_clip_val=cfg.optim.grad_clip or None, accumulate_grad_batches=cfg.optim.accumulate,
        callbacks=[early, checkpoints, GradientGuard(cfg.optim.grad_norm_limit, scaler_handles_non_finite=precision == "16-mixed"),
                   *callbacks], logger=_logger(cfg, run_dir), plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False, num_sanity_val_steps=0, log_every_n_steps=max(1, min(25, per_rank)),
        enable_progress_bar=cfg.trainer.progress_bar, enable_model_summary=cfg.trainer.progress_bar,
        default_root_dir=str(run_dir),
    )
    if trainer.world_size != world:
        raise ConfigError(f"the launcher started {trainer.world_size} processes but --devices x --num-nodes is {world}")
    module.total_steps = -(-per_rank // cfg.optim.accumulate) * cfg.trainer.max_epochs
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        import yaml

        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    with _deterministic(cfg.trainer.deterministic, accelerator == "gpu"), loader_failures(trainer, run_dir):
        trainer.fit(module, datamodule=data, ckpt_path=str(ckpt_path) if ckpt_path else None)

    best = checkpoints.best_path if checkpoints.best_path.is_file() else None
    last = checkpoints.last_path if checkpoints.last_path.is_file() else None
    if not trainer.is_global_zero:
        return RunResult(run_dir, best, last, module.history, None, None)

    from .evaluate import evaluate
    from .report import plot_fields, plot_loss_curves, write_summary

    chosen = best or last
    state = load_checkpoint(chosen)["state_dict"] if chosen is not None else None
    if state is not None:
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    device = module.device
    model.to(device)
    splits = {"val": data.val_indices}
    if len(data.test_indices):
        splits["test"] = data.test_indices
    held_out = "test" if "test" in splits else "val"
    n_plot = min(cfg.trainer.plot_samples, len(splits[held_out]))
    keep = np.linspace(0, len(splits[held_out]) - 1, n_plot).round().astype(int).tolist() if n_plot else []
    evaluation, fields, samples = {}, None, []
    for name, idx in splits.items():
        res = evaluate(model, store.path, idx, normalize=cfg.data.normalize, norm=norm, climatology=clim,
                       variables=variables, batch_size=cfg.data.batch_size, device=device,
                       physics=physics if physics is not None else _physics_for_report(cfg, store, norm),
                       keep=keep if name == held_out else None, param_index=param_index)
        if name == held_out:
            fields, samples = res["fields"], res["field_samples"]
        res.pop("fields"), res.pop("field_samples")
        # per run (planet): where the model beats the baseline and where it does not
        res["runs"] = {}
        for run_id in store.split.get(name, []):
            one = evaluate(model, store.path, np.asarray(store.run(run_id).samples), normalize=cfg.data.normalize, norm=norm,
                           climatology=clim, variables=variables, batch_size=cfg.data.batch_size, device=device,
                           param_index=param_index)
            res["runs"][run_id] = {"model": one["model"]["rmse"], "climatology": one["climatology"]["rmse"],
                                   "skill": one["skill"]}
        evaluation[name] = res
    history = module.history
    epochs = history["epochs"]
    best_epoch = checkpoints.best_epoch
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "model": cfg.model.name, "store": str(store.path), "store_digest": digest,
        "accelerator": accelerator, "precision": precision, "devices": cfg.trainer.devices, "num_nodes": cfg.trainer.num_nodes,
        "epochs_run": len(epochs), "best_epoch": best_epoch, "best_val_rmse": checkpoints.best_score,
        "stopped_early": bool(early.stopped_epoch), "wall_time_s": time.perf_counter() - started,
        "held_out_split": held_out, "units": {v.name: v.units for v in store.variables},
        "evaluation": evaluation,
        "checkpoints": {"best": str(best) if best else None, "last": str(last) if last else None},
        "config": cfg.to_dict(),
    }
    if cfg.trainer.plots and epochs:
        summary["plots"] = {"loss_curves": str(plot_loss_curves(history, run_dir / "loss_curves.png",
                                                                 evaluation["val"]["climatology"]["rmse"]))}
        if fields and fields["truth"]:
            vi, li, label = _plot_choice(store, variables)
            summary["plots"]["fields"] = str(plot_fields(
                fields, samples, run_dir / "fields.png", var_index=vi, var_name=variables[vi],
                unit=store.variables[vi].units, level_index=li, level_label=label,
                lat=_coord(store, "lat"), lon=_coord(store, "lon")))
    summary["wall_time_s"] = time.perf_counter() - started
    table = write_summary(run_dir, summary)
    return RunResult(run_dir, best, last, history, summary, table)


def _physics_for_report(cfg: TrainConfig, store: Store, norm: Normalization) -> Any:
    """The physics terms as diagnostics (also when they were not trained with), if they apply."""
    from dataclasses import replace

    try:
        return _physics(replace(cfg, physics=replace(cfg.physics, enabled=True)), store, norm)
    except ConfigError:
        return None


def _plot_choice(store: Store, variables: list[str]) -> tuple[int, int, str]:
    """ta (else the first variable) at the lowest model level (largest sigma)."""
    vi = variables.index("ta") if "ta" in variables else 0
    level = store.manifest.get("coords", {}).get("level", {})
    values = level.get("values")
    if values and len(values) == store.sample_shape[1]:
        li = int(np.argmax(values))
        return vi, li, f"{level.get('name', 'level')} = {values[li]:g}"
    return vi, 0, "level 0"


def _coord(store: Store, name: str) -> list[float] | None:
    values = store.manifest.get("coords", {}).get(name, {}).get("values")
    return [float(v) for v in values] if values else None
