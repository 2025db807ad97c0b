"""astrobio's exception hierarchy: every failure the library reports is one of these.

Each subclasses a standard exception where that helps callers (`IntegrityError` is a
`ValueError`, `DataNotFoundError` a `FileNotFoundError`), and carries structured fields
(run, sample, chunk, path) beside a message that names them.
"""

from __future__ import annotations

__all__ = [
    "AstrobioError",
    "DataNotFoundError",
    "IntegrityError",
    "ConfigError",
    "DependencyError",
    "SampleIndexError",
    "first_line",
]


def first_line(e: BaseException) -> str:
    """`TypeName: first line of the message` (or just the type name): how a foreign exception is
    quoted inside one of astrobio's one-line errors."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


class AstrobioError(Exception):
    """Root of astrobio's exceptions. Messages are redacted on construction: credentials in
    object-store URLs, signed query values and secret environment values never reach a log."""

    def __init__(self, *args: object) -> None:
        from ._redact import redact

        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class DataNotFoundError(AstrobioError, FileNotFoundError):
    """A store, manifest, array or source file is missing or incomplete.

    The message says what is missing, where, and the command that creates it.
    """

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        from ._redact import redact

        message, path = redact(message), (redact(path) if path is not None else None)
        self.path = path
        self.hint = hint if hint is not None else _default_hint(path)
        text = message if path is None or path in message else f"{message}: {path}"
        if self.hint:
            text = f"{text}. {self.hint}"
        super().__init__(text)

    def __str__(self) -> str:  # FileNotFoundError would otherwise format (errno, strerror)
        return str(self.args[0]) if self.args else ""


def _default_hint(path: str | None) -> str:
    target = path if path is not None else "PATH"
    return (
        "Build the default dataset with `astrobio datasets build default`, "
        f"or write a store there with astrobio.write_store(...) / `astrobio ingest ... --out {target}`"
    )


class IntegrityError(AstrobioError, ValueError):
    """Stored data failed a check: checksum, decoded size, dtype, shape, NaN/Inf, physical range,
    or an inconsistent manifest. Never silently repaired or skipped."""

    def __init__(
        self,
        reason: str,
        *,
        run: str | None = None,
        sample: int | None = None,
        chunk: str | None = None,
        path: str | None = None,
    ) -> None:
        from ._redact import redact

        self.reason = redact(reason)
        self.run = run
        self.sample = sample
        self.chunk = chunk
        self.path = redact(path) if path is not None else None
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if run is not None:
            where.append(f"run {run!r}")
        if sample is not None:
            where.append(f"sample {sample}")
        if chunk is not None:
            where.append(f"chunk {chunk!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {self.reason}" if prefix else self.reason)


class ConfigError(AstrobioError, ValueError):
    """An option, argument or configuration value is invalid."""


class DependencyError(AstrobioError, ImportError):
    """An optional component is unavailable; the message says how to install it."""


class SampleIndexError(AstrobioError, IndexError):
    """A sample index outside the store."""
