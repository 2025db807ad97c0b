"""The metabolic graph store the graph task (and the language task, for its reaction names)
trains on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ....datasets import default_part
from ....errors import ConfigError
from ....stores._group import read_manifest
from ....stores.graph import FORMAT, HINT, open_graphs
from ...config import TrainConfig

__all__ = ["open_metabolic"]


def open_metabolic(cfg: TrainConfig, networks: list[str]) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(path, manifest, {name: MetabolicGraph}) of `data.graphs` (else the default dataset's
    metabolic part, built on first use), restricted to `networks` (ConfigError for unknown
    names). Sets `data.graphs` to the resolved path (saved in the run's config)."""
    path = Path(cfg.data.graphs) if cfg.data.graphs else default_part("metabolic")
    manifest = read_manifest(path, FORMAT, HINT)
    graphs = open_graphs(path, verify=False)  # read_manifest above verified the digests
    unknown = [n for n in networks if n not in graphs]
    if unknown:
        raise ConfigError(f"networks {unknown} are not in {path}; it holds {sorted(graphs)}")
    cfg.data.graphs = str(path.resolve())
    return path, manifest, {n: graphs[n] for n in networks}
