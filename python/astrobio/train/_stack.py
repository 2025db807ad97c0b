"""The one door to the parts of astrobio.train that import Lightning (trainer, checkpoints,
pipeline, ...). Lightning's own imports can fail in a broken environment (torchmetrics imports
an installed transformers, so a broken transformers breaks every model's trainer); going
through this door, that becomes one DependencyError line naming the fix, and `import
astrobio.train`, `--help` and config errors keep working without Lightning imported."""

from __future__ import annotations

import importlib
from types import ModuleType

from .._optional import broken_install

__all__ = ["lightning_module"]


def lightning_module(name: str) -> ModuleType:
    """`astrobio.train.<name>`; an ImportError while it (or Lightning) imports becomes one
    DependencyError line."""
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError as e:
        raise broken_install(e, "the trainer") from None
