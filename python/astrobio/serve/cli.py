"""The `astrobio serve` subcommand (mounted by `astrobio.cli`): the registry's REST API on uvicorn.
Its libraries load on use, so `astrobio --help` works without the serve extra."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .._optional import require
from ..registry import require_extra
from ..registry.cli import FMT
from . import serve

__all__ = ["add_command", "cmd_serve"]


def cmd_serve(args: argparse.Namespace) -> int:
    require_extra()
    require("fastapi")
    Settings = importlib.import_module("astrobio.serve.settings").Settings  # the serve extra is present now

    roots = [Path(p) for p in args.source_root]
    for r in roots:
        if not r.is_dir():
            raise ConfigError(f"--source-root {r} is not a directory")
    serve(Settings(database_url=args.database_url, source_roots=roots, max_body_bytes=args.max_body_bytes),
          host=args.host, port=args.port, log_level=args.log_level)
    return 0


def add_command(sub: Any) -> None:
    """Mount `serve` on the `astrobio` subparsers."""
    s = sub.add_parser("serve", help="run the registry REST API (FastAPI on uvicorn)", formatter_class=FMT,
                       epilog="example:\n  astrobio serve --host 127.0.0.1 --port 8000 --source-root ~/gcm_runs")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--source-root", action="append", default=[], help="directory collect may read sources from (repeatable)")
    s.add_argument("--max-body-bytes", type=int, default=64 * 1024)
    s.add_argument("--database-url", default=None, help="default: $ASTROBIO_REGISTRY_URL or $ASTROBIO_HOME/registry.db")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=cmd_serve)
