"""Default physical valid ranges for climate variables, by CF standard name and units.

An ingested variable whose `standard_name` attribute is in `CF_RANGES` and whose units are one of
that entry's spellings gets the entry's range, recorded in the manifest as
`"range_source": "cf-default:<standard_name>"`, so the core's range check fires for stores
built from anyone's model output. The bounds are physically generous: wide enough for any
plausible (exo)planet atmosphere (the same philosophy and, where they overlap, the same numbers as
`climate.DEFAULT_RANGES`), and for the small negative undershoots spectral models produce in
moisture fields; tight enough to catch a wrong unit by orders of magnitude, a fill value
(1e20, 9.96921e36) or corrupt data. Units that match no spelling give no default: a temperature
in degC is never checked against a kelvin range. docs/store-format.md has the table.
"""

from __future__ import annotations

import re

__all__ = ["CF_RANGES", "cf_default", "example_units"]

# standard name -> ((accepted units spellings, normalized by _norm), (lo, hi)); one row per
# unit family when a quantity is commonly written in two (percent or fraction, Pa or hPa).
CF_RANGES: dict[str, list[tuple[tuple[str, ...], tuple[float | None, float | None]]]] = {
    "air_temperature": [(("k", "kelvin", "degk", "deg_k", "degrees_k"), (10.0, 1500.0))],
    "surface_temperature": [(("k", "kelvin", "degk", "deg_k", "degrees_k"), (10.0, 2000.0))],
    "eastward_wind": [(("ms-1", "m/s", "meters/second", "metres/second"), (-500.0, 500.0))],
    "northward_wind": [(("ms-1", "m/s", "meters/second", "metres/second"), (-500.0, 500.0))],
    "upward_air_velocity": [(("ms-1", "m/s"), (-100.0, 100.0))],
    "lagrangian_tendency_of_air_pressure": [(("pas-1", "pa/s"), (-500.0, 500.0))],
    "specific_humidity": [(("kgkg-1", "kg/kg", "1", "g/g"), (-1e-3, 1.0)), (("gkg-1", "g/kg"), (-1.0, 1000.0))],
    "relative_humidity": [(("%", "percent"), (-1.0, 150.0)), (("1",), (-0.01, 1.5))],
    "geopotential_height": [(("m", "meter", "meters", "metre", "metres", "gpm"), (-2000.0, 500000.0))],
    "geopotential": [(("m2s-2", "m2/s2"), (-20000.0, 5.0e6))],
    "surface_altitude": [(("m", "meter", "meters", "metre", "metres"), (-20000.0, 30000.0))],
    "air_pressure": [(("pa", "pascal", "pascals"), (0.0, 1.0e8)), (("hpa", "mbar", "millibar", "millibars"), (0.0, 1.0e6))],
    "surface_air_pressure": [(("pa", "pascal", "pascals"), (0.0, 1.0e8)), (("hpa", "mbar", "millibar", "millibars"), (0.0, 1.0e6))],
    "air_pressure_at_mean_sea_level": [(("pa", "pascal", "pascals"), (0.0, 1.0e8)),
                                       (("hpa", "mbar", "millibar", "millibars"), (0.0, 1.0e6))],
    "cloud_area_fraction": [(("1",), (0.0, 1.0)), (("%", "percent"), (0.0, 100.0))],
}


def _norm(units: str) -> str:
    """Spelling-insensitive units: lower case, no spaces, '**' / '^' / '.' separators dropped
    ('m s**-1', 'm.s^-1' and 'm s-1' are all 'ms-1')."""
    return re.sub(r"\s+|\*\*|\^|\.(?=[a-z])", "", units.strip().lower())


def cf_default(standard_name: str | None, units: str | None) -> tuple[float | None, float | None] | None:
    """The default valid range for a CF standard name in these units; None when there is none."""
    if not standard_name or not units:
        return None
    u = _norm(units)
    for spellings, bounds in CF_RANGES.get(standard_name, []):
        if u in spellings:
            return bounds
    return None


def example_units(standard_name: str | None) -> str | None:
    """A units spelling the table accepts for this standard name (for hints), else None."""
    rows = CF_RANGES.get(standard_name or "")
    if not rows:
        return None
    first = rows[0][0][0]
    return {"k": "K", "ms-1": "m s-1", "pas-1": "Pa s-1", "kgkg-1": "kg kg-1", "m2s-2": "m2 s-2", "pa": "Pa"}.get(first, first)
