"""The dataset registry: versioned, verified datasets (`name@vN`), quality reports, lineage.

SQLite at `$ASTROBIO_HOME/registry.db` by default, PostgreSQL when `ASTROBIO_REGISTRY_URL`
is set; see docs/registry.md. `Client` talks to a registry served by `astrobio serve`.
Names load on first use, so `astrobio --help` works without the `serve` extra installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from .._optional import require

__all__ = ["Registry", "open_registry", "parse_ref", "resolve_data_ref", "record_run", "log_mlflow_dataset",
           "register_built_store", "Client"]

_WHERE = {"Registry": "core", "open_registry": "core", "parse_ref": "core", "resolve_data_ref": "lineage",
          "record_run": "lineage", "log_mlflow_dataset": "lineage", "register_built_store": "register", "Client": "client"}


def require_extra() -> None:
    """DependencyError naming the extra when the registry's libraries are missing."""
    for mod in ("sqlalchemy", "alembic"):
        require(mod)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    require_extra()
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
