"""Run the ExoPlaSim general circulation model and collect climate datacubes (optional: it
regenerates the default dataset's climate pack).

- `planets`: `PlanetSpec`s from the ingested catalogue table, and the Earth reference;
- `campaign`: the designed campaign (catalogue planets + a Latin hypercube per rotation regime),
  run one process per core, resumable; the settling rule and the held-out rule;
- `exoplasim`: the model's configuration for a spec, and the run;
- `output`: reading the model's NetCDF output, the run's result on disk;
- `pack`: finished results -> the default dataset's climate pack.
"""

from .exoplasim import DEFAULT_TIMESTEP_MIN, SPINUP_DRIFT_THRESHOLD_K_PER_YEAR, exoplasim_configure_kwargs, run_planet
from .output import (
    SURFACE_VARIABLES,
    VARIABLES,
    SimulationResult,
    global_mean,
    load_result,
    read_exoplasim_output,
    save_result,
)
from .campaign import campaign_specs, design_specs, held_out_split, run_campaign, settle_drift
from .pack import pack_results
from .planets import (
    CATALOGUE_EXCLUDED,
    CATALOGUE_SELECTION,
    EARTH_FLUX_VARIATIONS,
    PlanetSpec,
    catalogue_planet_specs,
    catalogue_table,
    default_planet_specs,
    earth_reference_spec,
    load_catalogue_rows,
    spec_from_catalogue_row,
)

__all__ = [
    "VARIABLES",
    "SURFACE_VARIABLES",
    "CATALOGUE_SELECTION",
    "CATALOGUE_EXCLUDED",
    "EARTH_FLUX_VARIATIONS",
    "DEFAULT_TIMESTEP_MIN",
    "SPINUP_DRIFT_THRESHOLD_K_PER_YEAR",
    "PlanetSpec",
    "SimulationResult",
    "catalogue_table",
    "load_catalogue_rows",
    "spec_from_catalogue_row",
    "earth_reference_spec",
    "catalogue_planet_specs",
    "default_planet_specs",
    "exoplasim_configure_kwargs",
    "read_exoplasim_output",
    "global_mean",
    "run_planet",
    "save_result",
    "load_result",
    "pack_results",
    "campaign_specs",
    "design_specs",
    "held_out_split",
    "run_campaign",
    "settle_drift",
]
