"""The metabolic graph store the graph task (and the language task, for its reaction names)
trains on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ....datasets import default_part
from ....errors import ConfigError
from ....stores._remote import store_location
from ....stores.graph import open_graph_store
from ...config import TrainConfig

__all__ = ["open_metabolic"]


def open_metabolic(cfg: TrainConfig, networks: list[str]) -> tuple[Path | str, dict[str, Any], dict[str, Any]]:
    """(path or URL, manifest, {name: MetabolicGraph}) of `data.location` (a directory or an
    s3:// URL; else the default dataset's metabolic part, built on first use), restricted to
    `networks` (ConfigError for unknown names). Sets `data.location` to the resolved location
    (saved in the run's config; the runner records its identity)."""
    path = store_location(cfg.data.location) if cfg.data.location else default_part("metabolic")
    manifest, graphs = open_graph_store(path, verify=True)  # digests checked over the bytes read
    unknown = [n for n in networks if n not in graphs]
    if unknown:
        raise ConfigError(f"networks {unknown} are not in {path}; it holds {sorted(graphs)}")
    cfg.data.location = path if isinstance(path, str) else str(path.resolve())
    return path, manifest, {n: graphs[n] for n in networks}
