"""The one door to the Rust core `astrobio._core`, imported on first use: `import astrobio`
works without it, and a missing or broken build is one DependencyError line (which
`astrobio validate` reports as a failed component) rather than an ImportError traceback."""

from __future__ import annotations

from typing import Any

from .errors import DependencyError, first_line

__all__ = ["core"]


def core() -> Any:
    """The native module `astrobio._core`; DependencyError naming the fix when it cannot load."""
    try:
        from . import _core
    except ImportError as e:
        raise DependencyError(f"the Rust data core astrobio._core cannot be imported ({first_line(e)}); "
                              "reinstall astrobio: pip install .") from None
    return _core
