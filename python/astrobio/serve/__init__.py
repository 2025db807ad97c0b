"""The REST service over the dataset registry (`astrobio serve`); see docs/registry.md.

Names load on first use (like `astrobio.registry`), so `astrobio --help` and the `serve`
subcommand's parser work without the serve extra; using them without it is a DependencyError."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["create_app", "Settings", "API_PREFIX", "serve"]

_WHERE = {"create_app": "app", "API_PREFIX": "app", "Settings": "settings"}


def serve(settings: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the service with uvicorn until interrupted."""
    from .._optional import require

    uvicorn = require("uvicorn")
    app = importlib.import_module(".app", __name__)
    uvicorn.run(app.create_app(settings), host=host, port=port, log_level=log_level)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
