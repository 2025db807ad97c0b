"""Ingest sources in the field's formats into verified astrobio stores.

One module per source format; each parses and validates its input with the field's library
(xarray, pandas, cobra), records provenance (source digests, tool versions, the command) and
hands arrays to a store writer (`astrobio.stores`). Ingest only parses: readers of the stores
live in `astrobio.stores`. Re-running on unchanged inputs is a no-op.
"""

from .climate import Grid, ingest_climate

__all__ = ["Grid", "ingest_climate"]
