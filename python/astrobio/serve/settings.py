"""Settings of the REST service; the app factory takes them, so tests start it with their own
database, source roots and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "DEFAULT_MAX_BODY"]

DEFAULT_MAX_BODY = 64 * 1024  # a collect request is a few paths and names; nothing needs more


@dataclass
class Settings:
    """`database_url` None: $ASTROBIO_REGISTRY_URL or SQLite in the data home.
    `source_roots`: directories collect may read sources from (none: collect is disabled).
    `store_root` None: $ASTROBIO_HOME/registry/stores. `collect_workers`: concurrent collects.
    `shutdown_grace`: seconds running collects get to finish when the server stops."""

    database_url: str | None = None
    source_roots: list[Path] = field(default_factory=list)
    max_body_bytes: int = DEFAULT_MAX_BODY
    store_root: Path | None = None
    collect_workers: int = 2
    shutdown_grace: float = 60.0
