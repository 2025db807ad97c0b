"""astrobio: train multimodal astrobiology models on real, verified scientific data, fast.

The hot path (reading, verifying, normalizing and collating datacube chunks) is the Rust
core `astrobio._core`, imported on first use; the stores (`astrobio.stores`) are zarr v3 groups.
"""

from __future__ import annotations

from ._version import __version__
from .errors import AstrobioError, ConfigError, DataNotFoundError, DependencyError, IntegrityError, SampleIndexError
from .reader import Batch, CubeReader
from .stores import CubeStore, CubeWriter, Run, Store, StoreWriter, Variable, open_cube, open_store, write_cube, write_store

__all__ = [
    "__version__",
    "AstrobioError",
    "ConfigError",
    "DataNotFoundError",
    "DependencyError",
    "IntegrityError",
    "SampleIndexError",
    "Batch",
    "CubeReader",
    "CubeStore",
    "CubeWriter",
    "open_cube",
    "write_cube",
    "Run",
    "Store",
    "StoreWriter",
    "Variable",
    "open_store",
    "write_store",
    "load_emulator",
]


def __getattr__(name: str) -> object:
    # `astrobio.load_emulator` loads torch and the trainer's task on first use, not at `import astrobio`
    if name == "load_emulator":
        from .emulator.load import load_emulator

        return load_emulator
    raise AttributeError(f"module 'astrobio' has no attribute {name!r}")
