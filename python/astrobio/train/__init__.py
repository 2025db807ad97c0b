"""The trainer: every model through one entry point, `train(cfg) -> RunResult` (typed config ->
Lightning fit with AMP, clipping, warmup + cosine, accumulation, atomic checkpoints, exact
resume, early stopping, non-finite and gradient guards, DDP -> held-out evaluation beside the
model's baseline, summary and plots). Each model is a task (`astrobio.train.tasks`; add one
with `register_task`). Entry point: `python -m astrobio.train`.

The config and the task registry import without Lightning. The names that need Lightning
(`train`, checkpoints, guards, the pipeline) are resolved on first use through one door
(`_stack.lightning_module`), so a broken Lightning stack is one DependencyError line from the
CLI, not a traceback at `import astrobio.train`.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._stack import lightning_module
from .config import DEFAULT_MODEL, DataConfig, ModelConfig, OptimConfig, TrainConfig, TrainerConfig
from .evaluation import Evaluation
from .tasks import Built, BuildContext, Task, TaskOptions, TrainedModule, get_task, register_task, task_names, unregister_task

#: Lightning-backed name -> its module in this package
_LIGHTNING = {
    "AtomicCheckpointIO": "checkpoint", "RunCheckpoints": "checkpoint", "atomic_save": "checkpoint",
    "load_checkpoint": "checkpoint", "CHECKPOINT_FORMAT": "checkpoint",
    "NonFiniteLossError": "guards", "DataLoaderError": "guards", "ExplodingGradientError": "guards",
    "GradientGuard": "guards", "preflight": "guards", "RunHistory": "history",
    "run_full": "pipeline", "RunResult": "trainer", "train": "trainer",
}
#: config layering (`resolve`): imports the task registry only
_RESOLVE = ("resolve", "apply_overrides", "config_from_dict", "migrate_model_section")

__all__ = sorted(["DataConfig", "Evaluation", "ModelConfig", "OptimConfig", "TrainConfig", "TrainerConfig", "DEFAULT_MODEL", "Built",
                  "BuildContext", "Task", "TaskOptions", "TrainedModule", "get_task", "register_task", "task_names", "unregister_task",
                  *_RESOLVE, *_LIGHTNING])


def __getattr__(name: str) -> Any:
    if name in _LIGHTNING:
        return getattr(lightning_module(_LIGHTNING[name]), name)
    if name in _RESOLVE:
        return getattr(importlib.import_module(f"{__name__}.resolve"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
