"""The ExoPlaSim general circulation model: its configuration for a `PlanetSpec` and the run.

`run_planet` turns a spec into an ExoPlaSim run and returns the final model year's twelve
monthly means of ``ta, ua, va, hus, wap`` (`astrobio.simulate.output.SimulationResult`) with full
provenance. Outputs are simulations; the provenance says so and names the model, its version and
every parameter passed to it.

ExoPlaSim (PyPI ``exoplasim``) is optional and imported on first use. It needs ``gfortran``
and, for its Python postprocessor, the ``meson``/``ninja`` build tools and ``netCDF4``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DependencyError
from .output import INSTALL_HINT, SURFACE_VARIABLES, VARIABLES, SimulationResult, global_mean, read_exoplasim_output
from .planets import PlanetSpec

__all__ = ["exoplasim_configure_kwargs", "run_planet", "DEFAULT_TIMESTEP_MIN", "SPINUP_DRIFT_THRESHOLD_K_PER_YEAR",
           "MODEL_YEAR_DAYS"]

#: |annual global-mean surface temperature drift| above this (K per model year) marks spin-up.
SPINUP_DRIFT_THRESHOLD_K_PER_YEAR = 0.1
#: Model timestep, minutes (ExoPlaSim's default).
DEFAULT_TIMESTEP_MIN = 45.0
#: ExoPlaSim model year: 360 Earth days, written as 12 means of 30 days each.
MODEL_YEAR_DAYS = 360.0


def _import_exoplasim() -> Any:
    """Import exoplasim, or raise DependencyError with the install command."""
    try:
        exo = importlib.import_module("exoplasim")
    except ImportError as e:
        raise DependencyError(
            f"ExoPlaSim is not installed ({e}); install it with `{INSTALL_HINT}`"
        ) from e
    if exo is None:
        raise DependencyError(f"ExoPlaSim is not importable; install it with `{INSTALL_HINT}`")
    return exo


def _check_postprocessor(exo: Any) -> None:
    """ExoPlaSim's postprocessor needs its f2py-built pyfft module (built on first use)."""
    if importlib.util.find_spec("exoplasim.pyfft") is None:
        src = Path(exo.__file__).parent
        raise DependencyError(
            "ExoPlaSim's postprocessor module exoplasim.pyfft is not built; build it with "
            f"`cd {src} && python -m numpy.f2py -c -m pyfft pyfft.f90 --backend meson && "
            "python -m numpy.f2py -c -m pyfft991 pyfft991.f90 --backend meson` "
            "(needs gfortran, meson, ninja)"
        )


def exoplasim_configure_kwargs(spec: PlanetSpec, *, timestep_min: float | None = None,
                               mldepth_m: float | None = None) -> dict[str, Any]:
    """The exact keyword arguments passed to ``exoplasim.Model.configure`` for `spec`.

    Synchronous planets follow ExoPlaSim's tidally-locked settings (``TLmodel``): exponential
    physics filter, fixed circular orbit, zero obliquity, no ozone, 100 K initial day-night
    contrast; all planets use ExoPlaSim's default 45-minute timestep (``TLmodel`` uses 30 minutes;
    at T21 a 45-minute run of the hottest selected locked planet, Ross 128 b, spun up stably,
    and it costs two thirds of the compute). Pass `timestep_min` to override, and `mldepth_m` to
    replace ExoPlaSim's 50 m mixed-layer ocean (a thin slab settles within months: see
    `astrobio.simulate.campaign`). Snapshot output is off (only the 12 monthly means are needed).
    """
    pn2 = spec.surface_pressure_bar - spec.pco2_bar - spec.po2_bar
    if pn2 <= 0:
        raise ConfigError(f"{spec.name}: CO2 and O2 exceed the surface pressure")
    kw: dict[str, Any] = {
        "flux": spec.flux_wm2,
        "startemp": None if spec.solar_spectrum else spec.star_teff_k,
        "radius": spec.radius_earth,
        "gravity": spec.gravity_ms2,
        "rotationperiod": spec.rotation_period_days,
        "synchronous": spec.synchronous,
        "pN2": pn2,
        "pCO2": spec.pco2_bar,
        "aquaplanet": spec.aquaplanet,
        "snapshots": 0,
        "eccentricity": spec.eccentricity,
        "obliquity": spec.obliquity_deg,
    }
    if spec.po2_bar > 0:
        kw["pO2"] = spec.po2_bar
    if spec.synchronous:
        kw.update({"physicsfilter": "gp|exp|sp", "fixedorbit": True, "ozone": False,
                   "substellarlon": 180.0, "tlcontrast": 100.0})
    elif spec.aquaplanet:
        kw["fixedorbit"] = True
    kw["timestep"] = DEFAULT_TIMESTEP_MIN if timestep_min is None else float(timestep_min)
    if mldepth_m is not None:
        kw["mldepth"] = float(mldepth_m)
    return kw


def _drift(annual_ts: list[float], monthly_final: np.ndarray) -> tuple[float, str]:
    if len(annual_ts) >= 2:
        return annual_ts[-1] - annual_ts[-2], "difference of the last two annual global means"
    return (float(monthly_final[-1] - monthly_final[0]) * 12.0 / 11.0,
            "single year: (last month - first month) global mean, scaled to a year")


def run_planet(spec: PlanetSpec, workdir: str | os.PathLike[str], years: int = 2, *,
               resolution: str = "T21", layers: int = 10, precision: int = 4,
               timestep_min: float | None = None, mldepth_m: float | None = None,
               extend_until: Callable[[np.ndarray], bool] | None = None, max_years: int | None = None,
               restart_file: str | os.PathLike[str] | None = None,
               prior_annual_ts: Sequence[float] = ()) -> SimulationResult:
    """Run ExoPlaSim for `spec` for `years` model years (360 days each) in ``workdir/model``.

    With `extend_until` (a test of the final year's monthly global-mean surface temperature, e.g.
    "has settled"), the run continues a year at a time after `years` until it passes or
    `max_years` are done: run longer where the drift says so.

    The model starts cold from ExoPlaSim's default initial state, or, with `restart_file` (a
    ``MOST_REST.<year>`` of an earlier run of the same planet), continues that run's state; then
    `prior_annual_ts` (that run's annual global-mean surface temperatures) is prepended to the
    record so the drift and the year count cover the whole run. Each year is
    postprocessed to netCDF (``MOST.<year>.nc``) in the model directory, which is kept. The
    returned result holds the final year; ``provenance["spin_up"]`` is True when the global-mean
    surface temperature still drifts by more than `SPINUP_DRIFT_THRESHOLD_K_PER_YEAR`.

    Raises:
        DependencyError: ExoPlaSim (or its compiled postprocessor) is missing.
        ConfigError: bad arguments.
        RuntimeError: the model crashed (ExoPlaSim moves its files to ``<modelname>_crashed``).
    """
    if years < 1:
        raise ConfigError(f"years must be >= 1, got {years}")
    restart = Path(restart_file).resolve() if restart_file is not None else None  # before ExoPlaSim's chdir
    if restart is not None and not restart.is_file():
        raise ConfigError(f"restart file {restart} does not exist")
    exo = _import_exoplasim()
    _check_postprocessor(exo)
    version = importlib.metadata.version("exoplasim")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    modeldir = workdir / "model"
    if modeldir.exists():
        shutil.rmtree(modeldir)
    configure = exoplasim_configure_kwargs(spec, timestep_min=timestep_min, mldepth_m=mldepth_m)
    postvars = [*VARIABLES, *SURFACE_VARIABLES]
    started = time.time()
    cwd = os.getcwd()
    try:
        model = exo.Model(resolution=resolution, layers=layers, ncpus=1, precision=precision,
                          modelname=spec.slug, workdir=str(modeldir), outputtype=".nc")
        model.configure(**configure, **({"restartfile": str(restart)} if restart else {}))
        model.cfgpostprocessor(extension=".nc", variables=postvars, mode="grid", times=12,
                               timeaverage=True)
        model.run(years=years, crashifbroken=True)
        while extend_until is not None and years < (max_years or years):
            os.chdir(cwd)
            _, surf, crd, _ = read_exoplasim_output(modeldir / f"MOST.{years - 1:05d}.nc")
            if extend_until(global_mean(surf["ts"], crd["lat"])):
                break
            model.run(years=1, crashifbroken=True)
            years += 1
    finally:
        os.chdir(cwd)  # ExoPlaSim changes the working directory
    files = [modeldir / f"MOST.{y:05d}.nc" for y in range(years)]
    annual: list[float] = [float(t) for t in prior_annual_ts]
    for f in files:
        _, surf, crd, _ = read_exoplasim_output(f)
        annual.append(float(global_mean(surf["ts"], crd["lat"]).mean()))
    data, surface, coords, units = read_exoplasim_output(files[-1])
    monthly = global_mean(surface["ts"], coords["lat"])
    drift, method = _drift(annual, monthly)
    units = {**units, "level": units.get("lev", "1") or "1", "month": "1"}
    provenance: dict[str, Any] = {
        "kind": "simulation",
        "model": "ExoPlaSim",
        "model_package": "exoplasim",
        "model_version": version,
        "resolution": resolution,
        "layers": layers,
        "precision": precision,
        "ncpus": 1,
        "configure": configure,
        "postprocessor": {"extension": ".nc", "variables": postvars, "mode": "grid", "times": 12,
                          "timeaverage": True},
        "initial_state": (f"restart file {restart} (continues {len(prior_annual_ts)} earlier model years)"
                          if restart else "ExoPlaSim default cold start (no restart file)"),
        "years_simulated": len(prior_annual_ts) + years,
        "model_year_days": MODEL_YEAR_DAYS,
        "output_year_index": years - 1,
        "time_axis": "12 consecutive 30-day means of the final 360-day model year",
        "variables": list(VARIABLES),
        "level_coordinate": "sigma = p / p_surface at layer midpoints (ExoPlaSim 'lev'); "
                            "pressure = sigma * ps",
        "annual_global_mean_ts_K": annual,
        "monthly_global_mean_ts_K": [float(t) for t in monthly],
        "ts_global_mean_drift_K_per_year": drift,
        "drift_method": method,
        "spin_up_threshold_K_per_year": SPINUP_DRIFT_THRESHOLD_K_PER_YEAR,
        "spin_up": bool(abs(drift) > SPINUP_DRIFT_THRESHOLD_K_PER_YEAR),
        "planet": spec.to_dict(),
        "output_files": [str(f) for f in files],
        "wall_time_s": time.time() - started,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"python": sys.version.split()[0], "platform": platform.platform(),
                 "numpy": np.__version__},
    }
    return SimulationResult(data=data, surface=surface, coords=coords, units=units,
                            provenance=provenance)


