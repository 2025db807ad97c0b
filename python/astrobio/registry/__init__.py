"""The dataset registry: versioned, verified datasets (`name@vN`), quality reports, lineage.

SQLite at `$ASTROBIO_HOME/registry.db` by default, PostgreSQL when `ASTROBIO_REGISTRY_URL`
is set; see docs/registry.md. `Client` talks to a registry served by `astrobio serve`.
"""

from __future__ import annotations

from .core import Registry, open_registry, parse_ref
from .lineage import log_mlflow_dataset, record_run, resolve_data_ref
from .register import register_built_store

__all__ = ["Registry", "open_registry", "parse_ref", "resolve_data_ref", "record_run", "log_mlflow_dataset",
           "register_built_store", "Client"]


def __getattr__(name: str) -> object:
    if name == "Client":  # httpx only when the client is used
        from .client import Client

        return Client
    raise AttributeError(name)
