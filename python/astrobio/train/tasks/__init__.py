"""Tasks: what each `--model` trains on, how it is evaluated and what it is compared with.

A task bundles, for one model: its data (a LightningDataModule), its LightningModule, the
validation metric the trainer monitors (checkpoints, early stopping) and its direction, the
baseline, the held-out evaluation and the rows of the summary table. The trainer
(`astrobio.train.trainer.train`) owns everything shared: hardware and precision, seeding,
run folder, atomic checkpoints, exact resume, early stopping, logging, the summary files.

Each task lives in its own module, imported only when that model is asked for, so a missing
optional library (torch_geometric for `graph`, transformers/peft for `language`) disables only
that model (astrobio.DependencyError naming the pip extra).

The task interface (duck-typed; see `datacube.DatacubeTask` for the reference):

    name: str; monitor: str; mode: "min" | "max"
    open(cfg) -> dict                      # open/check the data; identity (path, content_digest)
    build(cfg) -> (datamodule, module, batches_per_epoch_per_rank)
    evaluate(cfg, module, state_dict, run_dir) -> dict   # held-out metrics beside the baseline
    rows(summary) -> list[tuple[str, ...]]               # summary table rows (header first)
    plots(cfg, summary, module, run_dir) -> dict         # optional extra plots
"""

from __future__ import annotations

import importlib
from typing import Any

from ...errors import ConfigError

__all__ = ["TASKS", "DEFAULTS", "check_name", "get_task"]

#: model name -> module of its task (relative to this package) and the task class
TASKS: dict[str, tuple[str, str]] = {
    "datacube": ("datacube", "DatacubeTask"),
    "graph": ("graph", "GraphTask"),
    "language": ("language", "LanguageTask"),
    "multimodal": ("multimodal", "MultimodalTask"),
}

#: per-model defaults of the shared config sections (applied before the file, --set and flags)
DEFAULTS: dict[str, dict[str, Any]] = {
    "datacube": {},
    # one step per epoch (all networks in one batch): many cheap epochs
    "graph": {"data": {"batch_size": 3}, "optim": {"lr": 0.01, "weight_decay": 0.0, "warmup_fraction": 0.0},
              "trainer": {"max_epochs": 200, "patience": 30, "checkpoint_every_n_epochs": 50}},
    # astrobio.text.fit.LanguageConfig's defaults
    "language": {"data": {"batch_size": 32},
                 "optim": {"lr": 1e-3, "weight_decay": 0.01, "warmup_fraction": 0.06, "min_lr_ratio": 0.05},
                 "trainer": {"max_epochs": 8, "patience": 3, "checkpoint_every_n_epochs": 4}},
    "multimodal": {"data": {"batch_size": 16}, "optim": {"lr": 2e-3},
                   "trainer": {"max_epochs": 60, "patience": 15, "checkpoint_every_n_epochs": 20}},
}


def check_name(name: str) -> str:
    if name not in TASKS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(TASKS))}")
    return name


def get_task(name: str) -> Any:
    """A fresh task object for model `name`. Unknown names raise ConfigError; a model whose
    optional library is missing or broken raises DependencyError (from the task's import)."""
    module, cls = TASKS[check_name(name)]
    return getattr(importlib.import_module(f".{module}", __name__), cls)()
