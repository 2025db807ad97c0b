"""Checkpoints: written atomically, read with `torch.load(weights_only=True)` only.

A checkpoint is Lightning's dict (model `state_dict`, `optimizer_states`, `lr_schedulers`,
precision-plugin/scaler state, `loops` with the train loader's sampler state, callback states)
plus `checkpoint["astrobio"]`: format version, resolved config, history, store identity and the
sampler state (a copy, for inspection). Everything in it is tensors and plain Python values, so
loading never unpickles code.

Files in `<run>/checkpoints/`: `last.ckpt` (every epoch, and every N optimizer steps when asked),
`best.ckpt` (best monitored validation metric so far: lowest RMSE, highest AUC, ...), `epoch-XXXX.ckpt` every N epochs (XXXX = epochs
completed).
"""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, Checkpoint

from .._fsutil import atomic_write
from ..errors import DataNotFoundError, IntegrityError, first_line
from .history import RunHistory

__all__ = ["CHECKPOINT_FORMAT", "READABLE_FORMATS", "atomic_save", "load_checkpoint", "restore_weights",
           "AtomicCheckpointIO", "RunCheckpoints", "RunSection"]

#: 2: the config's `model` section is {name, options} (1: the older layouts, migrated on load
#: by astrobio.train.config.migrate_model_section; everything else is unchanged)
CHECKPOINT_FORMAT = 2
READABLE_FORMATS = (1, 2)


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to `path` atomically (`astrobio._fsutil.atomic_write`: a temp sibling,
    fsync, rename, fsync of the folder). A crash at any point leaves either the old file or the
    new one, never a torn one; the temp file is removed on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)
    return path


def load_checkpoint(path: str | Path, map_location: Any = "cpu", *, require_astrobio: bool = True) -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`. A file holding anything but tensors and plain
    values (pickled code or objects) is refused with IntegrityError; a missing file is
    DataNotFoundError; a file that is not an astrobio checkpoint, or one in a format this
    version does not read, is IntegrityError."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError("checkpoint not found", path=str(p), hint="Pass a .ckpt file or a run folder with checkpoints/last.ckpt")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise IntegrityError(f"refused to load: the checkpoint holds more than tensors and plain values "
                             f"(weights_only=True): {first_line(e)}", path=str(p)) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise IntegrityError(f"unreadable checkpoint: {first_line(e)}", path=str(p)) from None
    if require_astrobio:
        meta = ckpt.get("astrobio") if isinstance(ckpt, dict) else None
        if not isinstance(meta, dict) or "config" not in meta:
            raise IntegrityError("not an astrobio training checkpoint (no 'astrobio' section)", path=str(p))
        if meta.get("format") not in READABLE_FORMATS:
            raise IntegrityError(f"checkpoint format {meta.get('format')!r} is not supported by this astrobio "
                                 f"(it reads formats {', '.join(map(str, READABLE_FORMATS))})", path=str(p))
    return ckpt


def restore_weights(module: torch.nn.Module, state: dict[str, Any]) -> None:
    """Load a checkpoint's `state_dict` into the LightningModule `module` as Lightning does on
    resume (strict unless the module saves only part of itself, `strict_loading=False`)."""
    module.load_state_dict(state, strict=getattr(module, "strict_loading", True) is not False)


class RunSection(Callback):
    """Writes `checkpoint["astrobio"]` (format, resolved config, history, meta, a copy of the
    train sampler's state) into every checkpoint, and restores the history on resume. A task's
    LightningModule may add its own entries in its `on_save_checkpoint` (which runs after this)."""

    def __init__(self, config: Any, meta: dict[str, Any], history: RunHistory) -> None:
        self.config = config  # the run's TrainConfig, saved as a plain dict
        self.meta = meta
        self.history = history

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        loader = getattr(trainer, "train_dataloader", None)
        sampler = loader.state_dict() if loader is not None and hasattr(loader, "state_dict") else None
        checkpoint["astrobio"] = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "history": self.history.to_dict(),
            "meta": copy.deepcopy(self.meta),
            "sampler": sampler,  # a copy for inspection; resume uses Lightning's loop state
        }

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        self.history.load(checkpoint["astrobio"]["history"])


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic writes and weights-only reads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path, map_location if map_location is not None else "cpu")

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


class RunCheckpoints(Checkpoint):
    """Writes last.ckpt (each epoch, and every `every_n_steps` optimizer steps), best.ckpt (when
    the monitored metric improves; a non-finite value never does) and epoch-XXXX.ckpt (every
    `every_n_epochs` epochs). Saves at train-epoch end, after validation and early stopping have
    updated their state, like Lightning's ModelCheckpoint. Its own state (best score) is saved
    in the checkpoint and restored on resume."""

    def __init__(self, dirpath: str | Path, *, monitor: str, mode: str = "min", every_n_epochs: int = 5,
                 every_n_steps: int = 0) -> None:
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be min or max, got {mode!r}")
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.mode = mode
        self.every_n_epochs = every_n_epochs
        self.every_n_steps = every_n_steps
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self._last_step_saved = -1

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.ckpt"

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "monitor": self.monitor}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict.get("best_score")
        self.best_epoch = state_dict.get("best_epoch")

    def _save(self, trainer: Any, path: Path) -> None:
        # Lightning's weights_only=False here means "the full state" (optimizer, loops, ...), not a load flag.
        trainer.save_checkpoint(str(path), weights_only=False)
        self._last_step_saved = trainer.global_step

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        # Temp files of a writer killed mid-write (atomic_write's `.NAME.tmp-*`) are never loaded;
        # remove them before this run writes. Only rank 0 writes checkpoints, and none is writing yet.
        if trainer.is_global_zero and self.dirpath.is_dir():
            for stale in self.dirpath.glob(".*.ckpt.tmp-*"):
                stale.unlink(missing_ok=True)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        # Not after the epoch's last batch: a checkpoint from there, before validation, resumes
        # into the epoch end without the validation metric (Lightning does not rerun it), so
        # early stopping fails. The epoch-end checkpoint follows validation right after.
        if trainer.is_last_batch:
            return
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0 and step != self._last_step_saved:
            self._save(trainer, self.last_path)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1  # epochs completed
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None:
            score = float(value)
            better = self.best_score is None or (score < self.best_score if self.mode == "min" else score > self.best_score)
            if math.isfinite(score) and better:
                self.best_score, self.best_epoch = score, epoch
                self._save(trainer, self.best_path)
        if epoch % self.every_n_epochs == 0:
            self._save(trainer, self.dirpath / f"epoch-{epoch:04d}.ckpt")
        self._save(trainer, self.last_path)
