"""schemathesis' command line, as `python -m schemathesis.cli`, with one interpreter bug worked
around: CPython 3.11 (seen on 3.11.7 in CI) can raise `SystemError: AST constructor recursion
depth mismatch` from `ast.parse` on a large module. hypothesis parses source only to describe a
lambda by name in its reports and falls back to "<unknown>" on a SyntaxError, so the bug is
turned into that here; anything else `ast.parse` raises is raised unchanged. Without this the
fuzzer's coverage phase stops with a "Runtime Error" of its own, not of the server under test.

    python scripts/schemathesis_cli.py run URL [schemathesis options]
"""

from __future__ import annotations

import ast
import sys

_parse = ast.parse


def _parse_around_the_bug(source, *args, **kwargs):  # type: ignore[no-untyped-def]
    try:
        return _parse(source, *args, **kwargs)
    except SystemError as e:
        if "recursion depth mismatch" not in str(e):
            raise
        raise SyntaxError(f"not parsed: {e} (a CPython 3.11 ast bug)") from None


ast.parse = _parse_around_the_bug

if __name__ == "__main__":
    import schemathesis.cli

    sys.exit(schemathesis.cli.schemathesis())
