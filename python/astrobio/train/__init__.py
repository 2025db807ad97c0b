"""The trainer (every model through one entry point; model-specific parts in `tasks`): typed config -> Lightning fit (AMP, clipping, warmup + cosine, accumulation,
atomic checkpoints, exact resume, early stopping, non-finite guard, DDP) -> held-out evaluation
beside the climatology baseline, summary and plots. Entry point: `python -m astrobio.train`.

Names are imported lazily so `python -m astrobio.train --help` and config errors do not wait
for Lightning to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AtomicCheckpointIO": "checkpoint", "RunCheckpoints": "checkpoint", "atomic_save": "checkpoint",
    "load_checkpoint": "checkpoint",
    "DataConfig": "config", "ModelConfig": "config", "OptimConfig": "config", "PhysicsConfig": "config",
    "TrainConfig": "config", "TrainerConfig": "config", "config_from_dict": "config",
    "EmulatorModule": "module", "NonFiniteLossError": "module", "TaskModule": "module",
    "GraphOptions": "config", "MultimodalOptions": "config", "LanguageOptions": "config",
    "TASKS": "tasks", "get_task": "tasks", "run_full": "pipeline", "PHASES": "pipeline",
    "DataLoaderError": "guards", "ExplodingGradientError": "guards", "GradientGuard": "guards", "preflight": "guards",
    "RunResult": "trainer", "train": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
