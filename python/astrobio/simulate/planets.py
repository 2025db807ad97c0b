"""Planets to simulate: `PlanetSpec`s derived from rows of the ingested planet catalogue (the
default dataset's exoplanet.eu table store, read with `astrobio.stores.table.open_table`), plus
a documented Earth reference and its instellation variations.

Conventions and assumptions (all recorded per spec in ``PlanetSpec.notes``):

* Instellation: ``S/S_earth = L/a^2`` with ``L/L_sun = (R*/R_sun)^2 (Teff/5772 K)^4`` and ``a`` in au;
  the model flux is ``S * 1367 W m-2`` (ExoPlaSim's Earth default).
* Mass and radius: the table's values (Earth units, converted from the catalogue's Jupiter units
  at ingest with the IAU 2015 nominal values). A mass whose provenance is "Msini" is a minimum
  mass (``M sin i``). Where only one of mass and radius is known, the other follows the
  rocky-planet relation of Otegi et al. (2020, A&A 634, A43): ``R = 1.03 M^0.29`` (Earth
  units). Gravity is ``9.80665 M / R^2`` m s-2.
* Rotation: a planet of a star cooler than 4000 K on an orbit shorter than 50 days is taken to be
  tidally locked (synchronous; rotation period = orbital period). Others rotate once per Earth
  day (unknown; assumed).
* Orbits are circular with zero obliquity for exoplanets; exoplanets are aquaplanets with 1 bar
  of N2 and 400 ppmv CO2; the Earth reference keeps ExoPlaSim's Earth land mask, orbit and solar
  spectrum.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..datasets.default import default_part
from ..errors import ConfigError, DataNotFoundError
from ..stores.table import open_table

__all__ = ["PlanetSpec", "CATALOGUE_SELECTION", "CATALOGUE_EXCLUDED", "EARTH_FLUX_VARIATIONS", "catalogue_table",
           "load_catalogue_rows", "spec_from_catalogue_row", "earth_reference_spec", "catalogue_planet_specs",
           "default_planet_specs"]

SOLAR_FLUX_WM2 = 1367.0  # ExoPlaSim's default (Earth) instellation
SUN_TEFF_K = 5772.0
G_EARTH = 9.80665
#: Otegi et al. (2020) rocky branch: R = OTEGI_R0 * M**OTEGI_EXP in Earth units.
OTEGI_R0 = 1.03
OTEGI_EXP = 0.29
#: Tidal-locking rule: host cooler than this and orbit shorter than SYNC_MAX_PERIOD_DAYS.
SYNC_MAX_TEFF_K = 4000.0
SYNC_MAX_PERIOD_DAYS = 50.0

#: Catalogue rows (exoplanet.eu names, the table's pl_name), in run-priority order.
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
        source_row: The catalogue row id (the planet's ``pl_name``), or None.
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


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9.+-]+", "_", name.strip().lower()).strip("_")
    return s or "planet"


def catalogue_table() -> Path:
    """The default dataset's exoplanet.eu table store (built first when missing or stale)."""
    return default_part("catalogues")


def load_catalogue_rows(names: Sequence[str], table: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The rows of the table store at `table` (default: `catalogue_table()`) whose ``pl_name``
    is one of `names`, as {column: value} (numbers float, NaN when missing; strings or None),
    plus ``_source``: where the table came from, for the specs' provenance.

    Raises:
        DataNotFoundError: no table store there, or a requested name is not in the table.
    """
    root = Path(table) if table is not None else catalogue_table()
    df, manifest = open_table(root)
    source = _table_source(root, manifest)
    wanted = set(names)
    found: dict[str, dict[str, Any]] = {}
    for row in df[df["pl_name"].isin(wanted)].to_dict("records"):
        found[str(row["pl_name"])] = {k: (None if v is pd.NA else v) for k, v in row.items()} | {"_source": source}
    missing = sorted(wanted - set(found))
    if missing:
        raise DataNotFoundError(f"planets not in the catalogue: {missing}", path=str(root),
                                hint="Names must match the table's pl_name column exactly")
    return found


def _table_source(root: Path, manifest: Mapping[str, Any]) -> str:
    sources = manifest.get("provenance", {}).get("sources") or [{}]
    return (f"{manifest.get('credit', {}).get('name', 'planet catalogue')} table store {root.name} "
            f"({manifest.get('content_digest')}; from {sources[0].get('path', 'unknown source')})")


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def spec_from_catalogue_row(row: Mapping[str, Any], *, source: str | None = None) -> PlanetSpec:
    """Derive a `PlanetSpec` from one row of the catalogue table (see the module docstring).

    Raises:
        ConfigError: the row lacks what the derivation needs (stellar Teff and radius, semi-major
            axis, orbital period, and at least one of mass and radius).
    """
    name = str(row["pl_name"])
    teff = _num(row, "st_teff")
    rstar = _num(row, "st_rad")
    a_au = _num(row, "pl_orbsmax")
    period = _num(row, "pl_orbper")
    mass_cat = _num(row, "pl_bmasse")
    radius_cat = _num(row, "pl_rade")
    lacking = [k for k, v in (("st_teff", teff), ("st_rad", rstar), ("pl_orbsmax", a_au),
                              ("pl_orbper", period)) if v is None]
    if mass_cat is None and radius_cat is None:
        lacking.append("pl_bmasse or pl_rade")
    if lacking:
        raise ConfigError(f"catalogue row {name!r} lacks {', '.join(lacking)}")
    assert teff is not None and rstar is not None and a_au is not None and period is not None
    notes: dict[str, str] = {}

    lum = rstar**2 * (teff / SUN_TEFF_K) ** 4
    s_earth = lum / a_au**2
    notes["instellation"] = (f"S = L/a^2 with L = R*^2 (Teff/5772)^4 = {lum:.5g} L_sun "
                             f"(R* = {rstar} R_sun, Teff = {teff} K), a = {a_au} au")

    if radius_cat is not None:
        radius = radius_cat
        notes["radius"] = f"catalogue radius {radius_cat:.6g} R_earth"
    if mass_cat is not None:
        mass = mass_cat
        minimum = (row.get("pl_bmassprov") or "").strip() == "Msini"
        notes["mass"] = f"catalogue mass {mass_cat:.6g} M_earth" + (" (minimum mass, M sin i)" if minimum else "")
    if radius_cat is None:
        radius = OTEGI_R0 * mass ** OTEGI_EXP
        notes["radius"] = (f"no catalogue radius; R = {OTEGI_R0} M^{OTEGI_EXP} "
                           "(Otegi et al. 2020, rocky)")
    if mass_cat is None:
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
    notes["orbit"] = "circular orbit and zero obliquity assumed (the catalogue table records no eccentricity)"
    notes["atmosphere"] = "assumed 1 bar N2 with 400 ppmv CO2"
    notes["surface"] = "assumed aquaplanet (global mixed-layer ocean, 50 m)"
    return PlanetSpec(
        name=name, source=source or str(row.get("_source") or "planet catalogue table"), source_row=name,
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
                           table: str | Path | None = None) -> list[PlanetSpec]:
    """Specs for the selected catalogue planets, in the given order."""
    rows = load_catalogue_rows(names, table)
    return [spec_from_catalogue_row(rows[n]) for n in names]


def default_planet_specs(table: str | Path | None = None) -> list[PlanetSpec]:
    """The run list in priority order: Earth, the catalogue selection, then Earth flux variations."""
    specs = [earth_reference_spec()]
    specs += catalogue_planet_specs(CATALOGUE_SELECTION, table)
    specs += [earth_reference_spec(f) for f in EARTH_FLUX_VARIATIONS]
    return specs
