"""`astrobio tune`: hyperparameter search with optuna over the one training function
(`astrobio.train.train`). Each trial is a normal run; the study lives in a database, so it
survives crashes and is shared by processes. See docs/tuning.md.

    study.py   the study: trials, pruning, heartbeats, the database (`tune`)
    space.py   search spaces: each task's own (`Tunable`), overridable from YAML
    report.py  the end of a study: best.yaml, the best run beside the default config, plots
    cli.py     `astrobio tune`

Names load on first use, so `astrobio tune --help` and a missing optuna are one line, not an
import of Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> its module in this package
_WHERE = {"tune": "study", "PruningCallback": "study", "storage_url": "study", "require_optuna": "study",
          "base_config": "study", "TuneResult": "report", "held_out": "report", "load_space": "space",
          "check_space": "space", "suggest": "space", "tunable": "space"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
