"""Self-registration of stores astrobio builds (the embedded default dataset)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import AstrobioError
from ..stores.location import name_of, store_location
from .core import open_registry

__all__ = ["register_built_store", "DEFAULT_NAMES"]

log = logging.getLogger(__name__)

# default dataset part store file -> registry dataset name
DEFAULT_NAMES = {
    "climate.zarr": "default-climate",
    "ncep_winds.zarr": "default-ncep-winds",
    "ncep_hgt_djf.zarr": "default-ncep-hgt-djf",
    "catalogue_exoplanet_eu.zarr": "default-catalogue-exoplanet-eu",
    "catalogue_nasa_2019.zarr": "default-catalogue-nasa-2019",
    "metabolic.zarr": "default-metabolic",
    "observations.zarr": "default-observations",
}


def register_built_store(path: str | Path, name: str | None = None) -> dict[str, Any] | None:
    """Register a freshly built store as the next version of `name` (default: from
    `DEFAULT_NAMES`, else the folder name) unless the newest ready version already records it
    unchanged. A registry problem is logged and never fails the build; returns the version."""
    path = store_location(path)
    base = name_of(path)
    name = name or DEFAULT_NAMES.get(base) or base.removesuffix(".zarr").replace("_", "-")
    try:
        return open_registry().register(path, name, if_changed=True, description="built by astrobio datasets build default")
    except AstrobioError as e:
        log.warning("could not register %s as %s: %s", path, name, e)
        return None
