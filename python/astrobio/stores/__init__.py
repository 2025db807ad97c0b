"""One home per store kind: cube stores (`cube`, `cube_writer`, `cube_kind`), catalogue tables
(`table`) and metabolic graphs (`graph`), all zarr v3 groups written by one writer core
(`_group`: temporary sibling, arrays, manifest last, fsync, rename) with one content-digest rule.

Each kind is one object (`kinds.StoreKind`) registered by name in `astrobio.stores.kinds`;
`astrobio validate`, the registry and the trainer find every kind through that registry. Adding
a store kind is one module that defines a `StoreKind` and registers it (`register_kind`, or the
`astrobio.store_kinds` entry point group): docs/add-a-store-kind.md.
"""

from __future__ import annotations

from pathlib import Path

from ._group import GroupWriter, content_digest, read_array, read_group_manifest, read_manifest
from .cube import FORMAT, FORMAT_VERSION, Run, Store, Variable, open_store
from .cube_writer import StoreWriter, write_store
from .graph import MetabolicGraph, open_graphs
from .kinds import Description, StoreKind, get_kind, kind_names, kind_of_format, register_kind, unregister_kind
from .table import open_table

__all__ = ["Description", "StoreKind", "format_of", "get_kind", "kind_names", "kind_of_format", "kind_of", "register_kind",
           "unregister_kind", "GroupWriter", "content_digest", "read_array", "read_manifest", "FORMAT", "FORMAT_VERSION",
           "MetabolicGraph", "Run", "Store", "StoreWriter", "Variable", "open_graphs", "open_store", "open_table", "write_store"]


def format_of(path: Path | str) -> str:
    """The format a store at `path` declares; the cube format when it declares none (its opener
    then gives the precise error)."""
    try:
        return str(read_group_manifest(path)["format"])
    except (OSError, ValueError, KeyError, TypeError):
        return FORMAT


def kind_of(path: Path | str) -> StoreKind:
    """The kind of the store at `path` (a directory or an s3:// URL), from the format its
    manifest declares; ConfigError (one line) when no registered kind opens that format."""
    return kind_of_format(format_of(path))
