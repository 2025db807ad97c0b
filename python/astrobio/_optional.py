"""The one door to astrobio's optional libraries, and the one table of how to install them.

Optional libraries are imported only when the feature that needs them is asked for. A missing
or broken install (ImportError, or any error raised while the library imports, e.g. an ABI
mismatch) disables only its own feature: `require` raises astrobio.DependencyError with one
line naming what needs it and the command that installs it. `astrobio validate` reports the
same hints through `probe`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from .errors import DependencyError, first_line

__all__ = ["Need", "NEEDS", "install_hint", "require", "probe", "broken_install"]


@dataclass(frozen=True)
class Need:
    """Who needs an optional library and how to get it."""

    what: str                 # the feature it enables, as a user names it
    extra: str | None = None  # the pip extra of astrobio that installs it (None: `install` says how)
    install: str | None = None  # the install command when it is not an extra of astrobio


#: import name (top-level package) -> what needs it and how to install it
NEEDS: dict[str, Need] = {
    "astrobio._core": Need("the Rust data core", install="reinstall astrobio: pip install ."),
    "torch": Need("training", install="pip install torch"),
    "zarr": Need("stores", install="pip install zarr"),
    "xarray": Need("NetCDF ingest", install="pip install xarray netCDF4"),
    "netCDF4": Need("NetCDF ingest", install="pip install netCDF4"),
    "cobra": Need("metabolic ingest", install="pip install cobra"),
    "exoplasim": Need("regenerating climate runs", install="apt-get install gfortran && pip install exoplasim meson ninja netCDF4"),
    "torch_geometric": Need("the graph VAE (--model graph)", "graph"),
    "transformers": Need("the language model (--model language)", "llm"),
    "peft": Need("the language model (--model language)", "llm"),
    "sklearn": Need("the language model's TF-IDF baseline (--model language)", "llm"),
    "optuna": Need("hyperparameter search (astrobio tune)", "tune"),
    "mlflow": Need("MLflow logging", "track"),
    "tensorboard": Need("TensorBoard logging", install="pip install tensorboard"),
    "sqlalchemy": Need("the dataset registry (astrobio registry, --data NAME@vN)", "serve"),
    "alembic": Need("the dataset registry (astrobio registry, --data NAME@vN)", "serve"),
    "fastapi": Need("the REST API (astrobio serve)", "serve"),
    "uvicorn": Need("the REST API (astrobio serve)", "serve"),
    "httpx": Need("the registry client (astrobio.registry.Client)", "serve"),
    "jinja2": Need("the quality report page (astrobio serve)", "serve"),
    "astropy": Need("survey observations (astrobio ingest observations, --model detector)", "survey"),
    "sep": Need("source detection in survey images (astrobio ingest observations)", "survey"),
    "pyarrow": Need("reading alert streams (astrobio ingest observations)", "survey"),
    "astropy_healpix": Need("the sky-region split of observations (astrobio ingest observations)", "survey"),
}


def _need(name: str) -> Need:
    return NEEDS.get(name) or NEEDS.get(name.split(".")[0]) or Need("this component", "dev")


def install_hint(name: str) -> str:
    """The command that installs the optional library `name` (e.g. `pip install "astrobio[tune]"`)."""
    need = _need(name)
    return need.install or f'pip install "astrobio[{need.extra}]"'


def require(name: str, *, alternative: str = "") -> ModuleType:
    """`import name`, or one DependencyError line naming what needs it and how to install it.
    `alternative`: how to do without it, appended to the line (e.g. another logger)."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # broken installs raise more than ImportError (OSError, AttributeError, ...)
        top = name.split(".")[0]
        raise DependencyError(f"{_need(name).what} needs {top}, which is unavailable ({first_line(e)}); "
                              f"install it with: {install_hint(name)}" + (f" ({alternative})" if alternative else "")) from None


def probe(name: str) -> tuple[bool, str]:
    """(importable, detail) for `astrobio validate`: the version, or why not and the fix."""
    try:
        module = importlib.import_module(name)
    except Exception as e:  # a broken optional install raises more than ImportError
        return False, f"{_need(name).what} unavailable ({first_line(e)}); fix: {install_hint(name)}"
    return True, f"{_need(name).what}: {getattr(module, '__version__', 'ok')}"


def broken_install(e: ImportError, who: str) -> DependencyError:
    """The one line for `who` failing to import because of `e`: the library that broke and how to
    reinstall it when it is one of the table's, else astrobio's own dependencies."""
    broken = (e.name or "").split(".")[0]
    if broken in NEEDS:
        return DependencyError(f"{who} cannot import: {broken} is installed but fails to import ({first_line(e)}); "
                               f"reinstall it with: {install_hint(broken).replace('pip install', 'pip install --force-reinstall', 1)} "
                               f"(or uninstall {broken})")
    return DependencyError(f"{who} cannot import ({first_line(e)}); reinstall astrobio's dependencies: pip install astrobio")
