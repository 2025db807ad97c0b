"""`astrobio validate`: are the components importable, and does the data pass every check?

Components are the optional pieces (each disables only its own feature when broken). Data
checks open each store and run the Rust core's full integrity scan (cube stores) or the
manifest and digest checks (table and graph stores).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

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
            out.append(Check(f"component {module}", False, f"{what} unavailable ({type(e).__name__}: {e}); fix: {fix}", required))
    from .datasets.sources import text_encoder_dir
    from .errors import AstrobioError

    try:
        out.append(Check("text encoder all-MiniLM-L6-v2", True, str(text_encoder_dir()), required=False))
    except AstrobioError as e:
        out.append(Check("text encoder all-MiniLM-L6-v2", False, str(e), required=False))
    return out


def check_store(path: Path) -> Check:
    """Full check of one store of any astrobio format."""
    from .errors import AstrobioError

    try:
        fmt = json.loads((path / "zarr.json").read_text())["attributes"]["astrobio"]["format"]
    except (OSError, ValueError, KeyError):
        fmt = "astrobio.store"  # let the opener produce the precise error
    try:
        if fmt == "astrobio.store":
            from .store import open_store

            store = open_store(path)
            report = store.verify()
            if not report["ok"]:
                first = report["failures"][0]
                return Check(f"store {path.name}", False, f"{report['chunks_failed']} bad chunks, {report['unexpected_files']} stray files; first: "
                             f"run {first['run']!r} chunk {first['chunk']!r}: {first['reason']}")
            store.verify_digest()  # after the chunk scan, whose failures are more precise
            gb = report["bytes_decoded"] / 1e9
            return Check(f"store {path.name}", True, f"{report['samples']} samples, {len(store.runs)} runs, {gb:.3f} GB verified")
        if fmt == "astrobio.table":
            from .ingest.catalogue import open_table

            df, _ = open_table(path, verify=True)
            return Check(f"table {path.name}", True, f"{len(df)} rows x {df.shape[1]} columns")
        if fmt == "astrobio.graphs":
            from .ingest.metabolic import open_graphs

            graphs = open_graphs(path, verify=True)
            return Check(f"graphs {path.name}", True, ", ".join(f"{k}: {g.num_nodes} nodes" for k, g in graphs.items()))
        return Check(f"store {path.name}", False, f"unknown format {fmt!r}")
    except AstrobioError as e:
        return Check(f"store {path.name}", False, f"{type(e).__name__}: {e}")
