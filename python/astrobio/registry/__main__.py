"""`python -m astrobio.registry registry|keys|serve ...`: the registry commands before they
are mounted on the `astrobio` CLI (same one-line error handling)."""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import AstrobioError
from .cli import add_commands


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="astrobio")
    add_commands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except AstrobioError as e:
        print(f"astrobio: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
