"""Optional libraries, imported only when the model that needs them is asked for.

A missing or broken install (ImportError, or any error raised while the library imports, e.g.
an ABI mismatch) disables only its own model: astrobio.DependencyError with one line naming
the pip extra that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import DependencyError, first_line

__all__ = ["EXTRAS", "require"]

#: import name -> (pip extra, what needs it)
EXTRAS = {
    "torch_geometric": ("graph", "the graph VAE (--model graph)"),
    "transformers": ("llm", "the language model (--model language)"),
    "peft": ("llm", "the language model (--model language)"),
    "sklearn": ("llm", "the language model's TF-IDF baseline (--model language)"),
    "optuna": ("tune", "hyperparameter search (astrobio tune)"),
    "sqlalchemy": ("serve", "the dataset registry (astrobio registry, --data NAME@vN)"),
    "alembic": ("serve", "the dataset registry (astrobio registry, --data NAME@vN)"),
    "fastapi": ("serve", "the REST API (astrobio serve)"),
    "uvicorn": ("serve", "the REST API (astrobio serve)"),
    "httpx": ("serve", "the registry client (astrobio.registry.Client)"),
    "jinja2": ("serve", "the quality report page (astrobio serve)"),
    "astropy": ("survey", "survey observations (astrobio ingest observations, --model detector)"),
    "sep": ("survey", "source detection in survey images (astrobio ingest observations)"),
    "pyarrow": ("survey", "reading alert streams (astrobio ingest observations)"),
    "astropy_healpix": ("survey", "the sky-region split of observations (astrobio ingest observations)"),
}


def require(name: str) -> ModuleType:
    """`import name`, or DependencyError naming the extra to install."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # broken installs raise more than ImportError (OSError, AttributeError, ...)
        extra, who = EXTRAS.get(name.split(".")[0], ("dev", "this component"))
        raise DependencyError(f"{who} needs {name.split('.')[0]}, which is unavailable ({first_line(e)}); "
                              f"install it with: pip install 'astrobio[{extra}]'") from None
