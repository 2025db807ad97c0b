"""One home per store kind: cube stores (`cube`, `cube_writer`), catalogue tables (`table`) and
metabolic graphs (`graph`), all zarr v3 groups written by one writer core (`_group`: temporary
sibling, arrays, manifest last, fsync, rename) with one content-digest rule.

`KINDS` maps a manifest's "format" to its kind; `astrobio validate` finds every kind through it.
Adding a store kind is one module here that defines a `StoreKind` and one entry in `KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from . import cube, graph, table
from ._group import read_group_manifest
from .cube import FORMAT, FORMAT_VERSION, Run, Store, Variable, open_store
from .cube_writer import StoreWriter, write_store
from .graph import MetabolicGraph, open_graphs
from .table import open_table

__all__ = ["KINDS", "StoreKind", "format_of", "FORMAT", "FORMAT_VERSION", "MetabolicGraph", "Run", "Store", "StoreWriter",
           "Variable", "open_graphs", "open_store", "open_table", "write_store"]


@runtime_checkable
class StoreKind(Protocol):
    """What a store kind provides to the rest of astrobio."""

    #: the manifest's "format" value
    format: str
    #: how `astrobio validate` names a store of this kind ("store", "table", "graphs")
    label: str
    #: the kind's short name in the dataset registry ("cube", "table", "graph")
    kind: str

    def verify(self, path: Path | str) -> tuple[bool, str]:
        """Open the store and check all of it; (ok, one-line summary). Raises AstrobioError
        when the store cannot be opened or its digests do not match."""
        ...

    def digest(self, manifest: Mapping[str, Any]) -> str:
        """The content digest of a manifest of this kind."""
        ...


KINDS: dict[str, StoreKind] = {k.format: k for k in (cube.KIND, table.KIND, graph.KIND)}


def format_of(path: Path | str) -> str:
    """The format a store at `path` declares; the cube format when it declares none (its opener
    then gives the precise error)."""
    try:
        return str(read_group_manifest(path)["format"])
    except (OSError, ValueError, KeyError, TypeError):
        return FORMAT
