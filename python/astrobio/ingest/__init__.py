"""Ingest sources in the field's formats into verified astrobio stores.

One module per source format; each validates its input, records provenance (source digests,
tool versions, the command) and writes atomically. Re-running on unchanged inputs is a no-op.
"""

from .climate import Grid, ingest_climate

__all__ = ["Grid", "ingest_climate"]
