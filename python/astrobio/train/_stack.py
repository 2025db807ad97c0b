"""The one door to the parts of astrobio.train that import Lightning (trainer, checkpoints,
pipeline, ...). Lightning's own imports can fail in a broken environment (torchmetrics imports
an installed transformers, so a broken transformers breaks every model's trainer); going
through this door, that becomes one DependencyError line naming the fix, and `import
astrobio.train`, `--help` and config errors keep working without Lightning imported."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import DependencyError, first_line
from ..models._optional import EXTRAS

__all__ = ["lightning_module"]


def lightning_module(name: str) -> ModuleType:
    """`astrobio.train.<name>`; an ImportError while it (or Lightning) imports becomes one
    DependencyError line."""
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError as e:
        broken = (e.name or "").split(".")[0]
        if broken in EXTRAS:
            raise DependencyError(f"the trainer cannot import: {broken} is installed but fails to import ({first_line(e)}); "
                                  f"reinstall it with: pip install --force-reinstall 'astrobio[{EXTRAS[broken][0]}]' "
                                  f"(or uninstall {broken})") from None
        raise DependencyError(f"the trainer cannot import ({first_line(e)}); reinstall astrobio's "
                              "dependencies: pip install astrobio") from None
