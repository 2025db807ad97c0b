"""`astrobio validate`: are the components importable, and does the data pass every check?

Components are the optional pieces (each disables only its own feature when broken); they are
imported by name here, on purpose, so that a broken one is reported instead of breaking the
command. Data checks find each store's kind in the kinds' registry (`astrobio.stores.kinds`, by
the format its manifest declares) and run that kind's full verification (`StoreKind.verify`);
a store of a format no registered kind opens is refused in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .datasets.sources import text_encoder_dir
from ._optional import probe
from .errors import AstrobioError, first_line
from .stores import kind_of_format, format_of
from .stores._remote import name_of

__all__ = ["Check", "check_components", "check_store", "COMPONENTS"]

#: the components checked, by import name (what each enables and its fix: `astrobio._optional.NEEDS`)
COMPONENTS: tuple[str, ...] = ("astrobio._core", "torch", "zarr", "xarray", "netCDF4", "cobra", "torch_geometric",
                               "transformers", "peft", "exoplasim")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def check_components() -> list[Check]:
    out = []
    for module in COMPONENTS:
        ok, detail = probe(module)  # a broken install is reported, not raised
        out.append(Check(f"component {module}", ok, detail, module in ("astrobio._core", "torch", "zarr")))
    try:
        out.append(Check("text encoder all-MiniLM-L6-v2", True, str(text_encoder_dir()), required=False))
    except AstrobioError as e:
        out.append(Check("text encoder all-MiniLM-L6-v2", False, str(e), required=False))
    return out


def check_store(path: Path | str) -> Check:
    """Full check of one store of any registered kind (`astrobio.stores.kinds`), in a
    directory or at an s3:// URL."""
    name = name_of(path)
    try:
        fmt = format_of(path)
    except AstrobioError as e:  # object storage unreachable or access denied
        return Check(f"store {name}", False, f"{type(e).__name__}: {e}")
    try:
        kind = kind_of_format(fmt)
    except AstrobioError as e:
        return Check(f"store {name}", False, str(e))
    try:
        ok, detail = kind.verify(path)
    except AstrobioError as e:
        return Check(f"{kind.name} {name}", False, f"{type(e).__name__}: {e}")
    return Check(f"{kind.name} {name}", ok, detail)
