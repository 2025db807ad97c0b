"""The one way every astrobio command ends: its result, or one line on stderr and a non-zero
exit (2 for an astrobio error, 130 for Ctrl-C). Used by `astrobio`, `python -m astrobio.train`
and `astrobio tune`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from .errors import AstrobioError

__all__ = ["error_line", "run_command", "log_to_console"]


def error_line(e: AstrobioError) -> str:
    """`astrobio: error: TypeName: message`, the message's whitespace (newlines too) collapsed."""
    return f"astrobio: error: {type(e).__name__}: {' '.join(str(e).split())}"


def run_command(command: Callable[[], int]) -> int:
    """`command()`'s exit status; an AstrobioError or Ctrl-C becomes one line on stderr."""
    try:
        return int(command())
    except AstrobioError as e:
        print(error_line(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrobio: interrupted", file=sys.stderr)
        return 130


class _StderrHandler(logging.StreamHandler):
    """Writes to the current sys.stderr, not the one at creation (which may be closed since:
    pytest's capture, an embedding application)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def log_to_console(level: int) -> None:
    """astrobio's messages (accelerator, precision) on stderr; Lightning keeps its own handler."""
    logger = logging.getLogger("astrobio")
    logger.setLevel(level)
    for h in list(logger.handlers):  # an older handler bound to a fixed stream: replace it
        if getattr(h, "_astrobio_console", False) and not isinstance(h, _StderrHandler):
            logger.removeHandler(h)
    if not any(getattr(h, "_astrobio_console", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._astrobio_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
