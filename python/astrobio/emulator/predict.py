"""Which planets to predict, as the model's parameter rows: a named planet (`astrobio simulate`'s
planet list, e.g. "earth", or a planet of the ingested catalogue), explicit `name=value`
parameters, or every row of a catalogue table (a path or a registered `name@vN`, filtered with a
pandas query). Planets become parameter rows through the same derivations the climate dataset
uses (`simulate.planets` for catalogue rows, `datasets.climate.run_params` for the derived
columns), so a planet is described to the emulator exactly as the training planets were.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..datasets.climate import PARAMS, SPEC_KEYS, run_params
from ..errors import ConfigError, DataNotFoundError
from ..simulate.planets import (EARTH_FLUX_VARIATIONS, G_EARTH, OTEGI_EXP, OTEGI_R0, PlanetSpec, catalogue_table,
                                earth_reference_spec, spec_from_catalogue_row)
from ..simulate.planets import _slug as slug_of  # the one slug rule
from ..stores.table import open_table
from .fields import fields_dataset

if TYPE_CHECKING:
    from .load import Emulator

__all__ = ["planet_spec", "catalogue_specs", "spec_row", "params_row", "planet_rows", "predict_dataset"]

log = logging.getLogger(__name__)

#: The `--params` names that describe a planet (the store's own parameter names are accepted too).
PLANET_KEYS = {"instellation": "instellation_earth", "star_teff": "star_teff_k", "radius": "radius_earth",
               "gravity": "gravity_ms2", "rotation_period": "rotation_period_days", "surface_pressure": "surface_pressure_bar"}


def _slug(name: str) -> str:
    """The name as `PlanetSpec.slug` spells it (how simulate names its run folders)."""
    return slug_of(name)


def planet_spec(name: str, table: str | Path | None = None) -> PlanetSpec:
    """The planet `name`: one of `astrobio simulate`'s reference planets (Earth and its
    instellation variations) or a row of the catalogue table (default: the default dataset's),
    matched by name or slug, case-insensitively.

    Raises:
        DataNotFoundError: no planet of that name.
        ConfigError: the catalogue row lacks what the derivation needs.
    """
    wanted = _slug(name)
    for spec in [earth_reference_spec()] + [earth_reference_spec(f) for f in EARTH_FLUX_VARIATIONS]:
        if wanted == spec.slug:
            return spec
    root = Path(table) if table is not None else catalogue_table()
    df, _ = open_table(root)
    hits = df[df["pl_name"].map(lambda n: _slug(str(n))) == wanted]
    if hits.empty:
        raise DataNotFoundError(f"no planet {name!r} in the simulate planet list (earth, earth_s0.9, earth_s1.1) "
                                f"or the catalogue", path=str(root), hint="Give its parameters instead: --params instellation=...,...")
    row = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in hits.iloc[0].to_dict().items()}
    return spec_from_catalogue_row(row, source=f"catalogue table {root}")


def _table_path(catalogue: str) -> Path | str:
    """A table store path, or the store of a registered `name@vN`."""
    if Path(catalogue).exists() or "@" not in catalogue:
        return catalogue
    from ..registry import require_extra

    require_extra()
    from ..registry.lineage import load_info

    info = load_info(catalogue)
    if info["kind"] != "table":
        raise ConfigError(f"{catalogue} is a {info['kind']} store; --catalogue takes a planet catalogue table")
    return str(info["uri"])


def catalogue_specs(catalogue: str, where: str | None = None) -> list[PlanetSpec]:
    """Every planet of a catalogue table (path or name@vN) that `where` (a pandas query on its
    columns, e.g. "pl_rade < 1.6 and st_teff < 4000") selects; rows the derivation cannot use
    (missing stellar or orbital values) are left out with one log line each."""
    path = _table_path(catalogue)
    df, _ = open_table(Path(path) if not str(path).startswith("s3://") else path)
    if where:
        try:
            df = df.query(where)
        except Exception as e:  # pandas raises many types for a bad expression
            raise ConfigError(f"--where {where!r} is not a query on the table's columns ({type(e).__name__}: {e})") from None
    specs, skipped = [], []
    for row in df.to_dict("records"):
        row = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in row.items()}
        try:
            specs.append(spec_from_catalogue_row(row, source=f"catalogue table {catalogue}"))
        except ConfigError as e:
            skipped.append(str(e))
    for why in skipped:
        log.warning("left out: %s", why)
    if not specs:
        raise DataNotFoundError(f"no planet of {catalogue} {'matching ' + repr(where) + ' ' if where else ''}has the values a "
                                f"prediction needs ({len(skipped)} rows left out)", path=str(path))
    return specs


def _by_name(emulator: Emulator, named: Mapping[str, float]) -> np.ndarray:
    missing = [p for p in emulator.param_names if p not in named]
    if missing:
        raise ConfigError(f"the emulator takes {', '.join(emulator.param_names)}; no value for {', '.join(missing)}")
    return np.array([float(named[p]) for p in emulator.param_names])


def spec_row(emulator: Emulator, spec: PlanetSpec) -> np.ndarray:
    """The parameter row [P] of a planet, derived as the climate dataset derives its planets'."""
    row = run_params(spec.to_dict(), 1)[0].astype(np.float64)
    return _by_name(emulator, {p.name: float(x) for p, x in zip(PARAMS, row)})


def params_row(emulator: Emulator, given: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """(parameter row [P], the planet's description) from `name=value` pairs. Planet keys:
    instellation (S_earth), star_teff (K), radius (R_earth), gravity (m s-2; default from the
    radius by the rocky relation of Otegi et al. 2020), rotation_period (days, or "synchronous"
    with orbital_period), surface_pressure (bar; default 1). Any of the model's own parameter
    names may be given directly (they override the derived ones)."""
    values = {k: v for k, v in given.items()}
    unknown = sorted(set(values) - set(PLANET_KEYS) - {"orbital_period", "synchronous"} - set(emulator.param_names))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; the emulator takes {', '.join(emulator.param_names)} "
                          f"(or orbital_period with rotation_period=synchronous)")

    def number(key: str) -> float:
        try:
            return float(values[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={values[key]!r} is not a number") from None

    sync = str(values.get("rotation_period", "")).strip().lower() in ("synchronous", "sync", "locked")
    if sync:
        if "orbital_period" not in values:
            raise ConfigError("rotation_period=synchronous needs orbital_period=DAYS (the rotation period of a locked planet)")
        values["rotation_period"] = values["orbital_period"]
    elif "synchronous" in values:
        sync = number("synchronous") > 0.5
    missing = [k for k in ("instellation", "star_teff", "rotation_period") if k not in values]
    if missing:
        raise ConfigError(f"--params needs {', '.join(missing)} (radius, gravity and surface_pressure are optional)")
    radius = number("radius") if "radius" in values else 1.0
    gravity = number("gravity") if "gravity" in values else G_EARTH * (radius / OTEGI_R0) ** (1.0 / OTEGI_EXP) / radius**2
    spec = {"instellation_earth": number("instellation"), "star_teff_k": number("star_teff"), "radius_earth": radius,
            "gravity_ms2": gravity, "rotation_period_days": number("rotation_period"), "synchronous": float(sync),
            "surface_pressure_bar": number("surface_pressure") if "surface_pressure" in values else 1.0}
    for k in SPEC_KEYS:
        if not math.isfinite(float(spec[k])) or (k != "synchronous" and float(spec[k]) <= 0):
            raise ConfigError(f"{k} must be a positive number, got {spec[k]}")
    row = run_params(spec, 1)[0].astype(np.float64)
    named = {p.name: float(x) for p, x in zip(PARAMS, row)}
    # the model's own derived columns, when given, override the derivation (e.g. equilibrium_temperature)
    named |= {k: number(k) for k in values if k in emulator.param_names and k not in PLANET_KEYS and k != "synchronous"}
    return _by_name(emulator, named), {"source": "parameters given by the user", **spec}


def planet_rows(emulator: Emulator, *, planet: str | None = None, params: Mapping[str, Any] | None = None,
                catalogue: str | None = None, where: str | None = None) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
    """(rows [B, P], names [B], descriptions [B]) of exactly one of the three ways to name planets."""
    chosen = [k for k, v in (("planet", planet), ("params", params), ("catalogue", catalogue)) if v]
    if len(chosen) != 1:
        raise ConfigError("name the planets one way: a planet name, parameters, or a catalogue (with --where)")
    if where and not catalogue:
        raise ConfigError("--where filters a --catalogue")
    if params:
        row, desc = params_row(emulator, params)
        return row[None], [str(params.get("name", "custom"))], [desc]
    specs = [planet_spec(planet)] if planet else catalogue_specs(str(catalogue), where)
    rows = np.stack([spec_row(emulator, s) for s in specs])
    return rows, [s.name for s in specs], [{"source": s.source, **{k: v for k, v in s.to_dict().items() if k != "notes"},
                                             "notes": dict(s.notes)} for s in specs]


def predict_dataset(emulator: Emulator, *, planet: str | None = None, params: Mapping[str, Any] | None = None,
                    catalogue: str | None = None, where: str | None = None, warn: bool = True) -> Any:
    """The emulated climate of the planets (see `planet_rows`) as a CF `xarray.Dataset`."""
    rows, names, descriptions = planet_rows(emulator, planet=planet, params=params, catalogue=catalogue, where=where)
    if warn:
        emulator.check_range(rows, names)
    mean, spread = emulator.predict_physical(rows)
    return fields_dataset(emulator, mean, spread, rows, names, descriptions)
