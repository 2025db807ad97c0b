"""The data home: where astrobio keeps built datasets, fetched sources and its registry."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_home"]


def data_home() -> Path:
    """$ASTROBIO_HOME, else $XDG_CACHE_HOME/astrobio, else ~/.cache/astrobio."""
    if os.environ.get("ASTROBIO_HOME"):
        return Path(os.environ["ASTROBIO_HOME"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "astrobio"
