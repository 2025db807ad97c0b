"""`astrobio validate`: are the components importable, and does the data pass every check?

Components are the optional pieces (each disables only its own feature when broken); they are
imported by name here, on purpose, so that a broken one is reported instead of breaking the
command. Data checks find each store's kind in the kinds' registry (`astrobio.stores.kinds`, by
the format its manifest declares) and run that kind's full verification (`StoreKind.verify`);
a store of a format no registered kind opens is refused in one line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .datasets.sources import text_encoder_dir
from .errors import AstrobioError, first_line
from .stores import kind_of_format, format_of
from .stores.location import name_of

__all__ = ["Check", "check_components", "check_store", "COMPONENTS"]

#: import name -> (what it enables, how to install it)
COMPONENTS: dict[str, tuple[str, str]] = {
    "astrobio._core": ("Rust data core", "reinstall astrobio: pip install ."),
    "torch": ("training", "pip install torch"),
    "zarr": ("stores", "pip install zarr"),
    "xarray": ("NetCDF ingest", "pip install xarray netCDF4"),
    "netCDF4": ("NetCDF ingest", "pip install netCDF4"),
    "cobra": ("metabolic ingest", "pip install cobra"),
    "torch_geometric": ("graph model", 'pip install "astrobio[graph]"'),
    "transformers": ("language model", 'pip install "astrobio[llm]"'),
    "peft": ("language model (LoRA)", 'pip install "astrobio[llm]"'),
    "exoplasim": ("regenerating climate runs", "apt-get install gfortran && pip install exoplasim meson ninja netCDF4"),
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def check_components() -> list[Check]:
    out = []
    for module, (what, fix) in COMPONENTS.items():
        required = module in ("astrobio._core", "torch", "zarr")
        try:
            mod = importlib.import_module(module)
            out.append(Check(f"component {module}", True, f"{what}: {getattr(mod, '__version__', 'ok')}", required))
        except Exception as e:  # a broken optional install raises more than ImportError
            out.append(Check(f"component {module}", False, f"{what} unavailable ({first_line(e)}); fix: {fix}", required))
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
