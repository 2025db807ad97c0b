"""Planet catalogues (exoplanet.eu CSV; NASA Exoplanet Archive CSV or VOTable) parsed into the
columns of a table store (`astrobio.stores.table`, format "astrobio.table").

Every source is mapped onto the NASA Exoplanet Archive column names in Earth/Solar units
(`astrobio.stores.table.COLUMNS`). Values are kept as published: a missing value stays NaN and is counted per column
in the manifest, never filled; a value that does not parse as a number, is infinite or is not
physically possible (e.g. a radius <= 0) refuses the whole ingest with the row and column
(rows are counted from 0, after the header, in the source's order).

Decisions:
- Duplicate planet names are refused: the name is the key that joins the catalogue to the
  other modalities (climate runs are simulated for planets picked by name), and a duplicate
  means the source mixes several solutions. A NASA "Planetary Systems" table with a
  `default_flag` column is reduced to its default rows first (the count dropped is recorded).
- exoplanet.eu publishes `mass` and, for RV planets, minimum mass `mass_sini`; `pl_bmasse`
  follows the archive's "best mass" (`mass`, else `mass_sini`) and `pl_bmassprov` says which
  it is, as the archive does: "Msini" where `mass` is missing or equals `mass_sini` (the
  catalogue copies M sin i into `mass` when the true mass is unknown), else "Mass".
- exoplanet.eu has no insolation column: `pl_insol` is all NaN for it (counted, not derived).
- NASA limit flags (`<col>lim` = 1 upper / -1 lower limit) are counted in the manifest; the
  values themselves are kept.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from ..errors import ConfigError, DataNotFoundError, IntegrityError, first_line
from ..stores import _group, table
from ..stores.table import COLUMNS, NUMERIC, write_table
from ..stores._remote import store_location
from .formats import IngestContext, SourceFormat, SourcePath, StrictRequest
from ._provenance import code_version, command_line, inputs_digest, sources_record, tool_versions, up_to_date

__all__ = ["CREDITS", "SCHEMAS", "CatalogueRequest", "FORMAT", "ingest_catalogue", "read_votable", "R_JUP_IN_R_EARTH", "M_JUP_IN_M_EARTH"]

log = logging.getLogger(__name__)

# IAU 2015 Resolution B3 nominal values: equatorial radii and GM ratios.
R_JUP_IN_R_EARTH = 7.1492e7 / 6.3781e6          # 11.2089
M_JUP_IN_M_EARTH = 1.2668653e17 / 3.986004e14   # 317.828

NASA_REQUIRED = ("pl_name",) + NUMERIC

CREDITS: dict[str, dict[str, str]] = {
    "exoplanet.eu": {
        "name": "The Extrasolar Planets Encyclopaedia (exoplanet.eu)",
        "url": "https://exoplanet.eu",
        "citation": "Schneider, J. et al. 2011, A&A 532, A79",
        "acknowledgement": "This research has made use of The Extrasolar Planets Encyclopaedia (exoplanet.eu).",
    },
    "nasa": {
        "name": "NASA Exoplanet Archive",
        "url": "https://exoplanetarchive.ipac.caltech.edu",
        "citation": "Akeson, R. L. et al. 2013, PASP 125, 989",
        "acknowledgement": (
            "This research has made use of the NASA Exoplanet Archive, which is operated by the California "
            "Institute of Technology, under contract with the National Aeronautics and Space Administration "
            "under the Exoplanet Exploration Program."
        ),
    },
}

# exoplanet.eu column -> (schema column, factor to the schema's units)
EU_MAP: dict[str, tuple[str, float]] = {
    "radius": ("pl_rade", R_JUP_IN_R_EARTH),
    "orbital_period": ("pl_orbper", 1.0),
    "semi_major_axis": ("pl_orbsmax", 1.0),
    "temp_calculated": ("pl_eqt", 1.0),
    "star_teff": ("st_teff", 1.0),
    "star_radius": ("st_rad", 1.0),
    "star_mass": ("st_mass", 1.0),
}
EU_REQUIRED = ("name", "mass", "mass_sini", *EU_MAP)
SCHEMAS = ("exoplanet.eu", "nasa")

# --- reading ---------------------------------------------------------------------------------

def read_votable(path: Path, columns: tuple[str, ...] | None = None) -> Any:
    """The first TABLE of a VOTable (TABLEDATA serialization) as a pandas DataFrame of strings
    (None where a cell is empty), streamed with ElementTree.iterparse; `columns` keeps only
    those FIELDs (all when None)."""
    fields: list[str] = []
    rows: list[list[str | None]] = []
    keep: list[int] | None = None
    tr = td = None  # qualified tag names, known once a FIELD (and so the namespace) is seen
    try:
        for _event, el in ET.iterparse(path, events=("end",)):
            tag = el.tag
            if tag == td:  # by far the most frequent event: skip it cheaply
                continue
            if tag == tr:
                cells = list(el)
                if len(cells) != len(fields):
                    raise IntegrityError(f"VOTable row {len(rows)} has {len(cells)} cells for {len(fields)} FIELDs", path=str(path))
                if keep is None:
                    keep = list(range(len(fields))) if columns is None else [fields.index(c) for c in columns if c in fields]
                rows.append([cells[i].text for i in keep])
                el.clear()  # keep memory flat while streaming
                continue
            ns, _, local = tag.rpartition("}")
            if local == "FIELD":
                fields.append(el.get("name") or el.get("ID") or f"col{len(fields)}")
                tr, td = (f"{ns}}}TR", f"{ns}}}TD") if ns else ("TR", "TD")
            elif local in ("BINARY", "BINARY2", "FITS"):
                raise IntegrityError(f"VOTable {local} serialization is not supported; export it as TABLEDATA", path=str(path))
            elif local == "TABLE" and fields:
                break  # only the first table is read
    except ET.ParseError as e:
        raise IntegrityError(f"not a readable VOTable/XML file ({first_line(e)})", path=str(path)) from None
    if not fields:
        raise IntegrityError("no FIELD elements: not a VOTable table", path=str(path))
    names = fields if columns is None else [c for c in columns if c in fields]
    return pd.DataFrame(rows, columns=names, dtype=object)


def _read_csv(path: Path) -> Any:
    """A CSV as strings; leading '#' comment lines (NASA archive downloads) are skipped.
    Pandas' standard missing markers ('', 'NA', 'nan', ...) become NaN."""
    skip = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                break
            skip += 1
    try:
        return pd.read_csv(path, dtype=str, skiprows=skip, low_memory=False)
    except (ValueError, pd.errors.ParserError) as e:
        raise IntegrityError(f"cannot parse CSV ({first_line(e)})", path=str(path)) from None


def _numbers(df: Any, col: str, path: Path, names: Any) -> np.ndarray:
    """A column as float64; an entry present but not a finite number is refused."""
    raw = df[col]
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = (np.isnan(vals) & raw.notna().to_numpy()) | np.isinf(vals)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise IntegrityError(f"row {df.index[i]} (planet {names[i]!r}), column {col!r}: {raw.iloc[i]!r} is not a finite number", path=str(path))
    return vals


def _require(df: Any, required: tuple[str, ...], path: Path, schema: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise IntegrityError(f"the {schema} catalogue lacks required columns {missing}", path=str(path))


def _names(df: Any, col: str, path: Path) -> list[str]:
    names = [("" if not isinstance(v, str) else v.strip()) for v in df[col].tolist()]
    empty = [i for i, n in enumerate(names) if not n]
    if empty:
        raise IntegrityError(f"row {df.index[empty[0]]}, column {col!r}: planet name is empty", path=str(path))
    return names


def _from_eu(df: Any, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    _require(df, EU_REQUIRED, path, "exoplanet.eu")
    names = _names(df, "name", path)
    cols: dict[str, Any] = {"pl_name": names, "_row": df.index.to_numpy()}
    for src, (dst, factor) in EU_MAP.items():
        cols[dst] = _numbers(df, src, path, names) * factor
    mass = _numbers(df, "mass", path, names)
    msini = _numbers(df, "mass_sini", path, names)
    has_mass = ~np.isnan(mass)
    cols["pl_bmasse"] = np.where(has_mass, mass, msini) * M_JUP_IN_M_EARTH
    # exoplanet.eu copies M sin i into `mass` when the true mass is unknown: equal values
    # mean the "mass" is a minimum mass.
    is_msini = ~np.isnan(msini) & (~has_mass | np.isclose(mass, msini, rtol=1e-9, atol=0.0))
    cols["pl_bmassprov"] = ["Msini" if s else "Mass" if m else "" for m, s in zip(has_mass, is_msini)]
    cols["pl_insol"] = np.full(len(names), np.nan)
    notes = {
        "mapping": {dst: src for src, (dst, _) in EU_MAP.items()} | {"pl_bmasse": "mass, else mass_sini", "pl_bmassprov": "Msini where mass is missing or equals mass_sini, else Mass", "pl_insol": None},
        "conversions": {
            "pl_rade": f"radius [R_jup] * {R_JUP_IN_R_EARTH:.6f} (IAU 2015 nominal equatorial radii)",
            "pl_bmasse": f"mass [M_jup] * {M_JUP_IN_M_EARTH:.6f} (IAU 2015 nominal GM ratio)",
        },
        "not_in_source": ["pl_insol"],
    }
    if "updated" in df.columns:
        notes["latest_row_update"] = str(df["updated"].dropna().max())
    return cols, notes


def _from_nasa(df: Any, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    _require(df, NASA_REQUIRED, path, "NASA Exoplanet Archive")
    notes: dict[str, Any] = {"mapping": {c: c for c in NUMERIC}, "conversions": {}}
    if "default_flag" in df.columns:
        keep = df["default_flag"].astype(str).str.strip() == "1"
        notes["non_default_rows_dropped"] = int((~keep).sum())
        df = df[keep]  # keep the original row numbers for messages
    names = _names(df, "pl_name", path)
    cols: dict[str, Any] = {"pl_name": names, "_row": df.index.to_numpy()}
    limits: dict[str, dict[str, int]] = {}
    for c in NUMERIC:
        cols[c] = _numbers(df, c, path, names)
        if f"{c}lim" in df.columns:
            flag = df[f"{c}lim"].astype(str).str.strip().to_numpy()
            present = ~np.isnan(cols[c])
            limits[c] = {"upper": int(((flag == "1") & present).sum()), "lower": int(((flag == "-1") & present).sum())}
    prov = df["pl_bmassprov"].tolist() if "pl_bmassprov" in df.columns else [None] * len(names)
    cols["pl_bmassprov"] = [v.strip() if isinstance(v, str) else "" for v in prov]
    if limits:
        notes["limit_flags"] = limits
    if "rowupdate" in df.columns:
        notes["latest_row_update"] = str(df["rowupdate"].dropna().max())
    return cols, notes


def _check(cols: Mapping[str, Any], path: Path) -> None:
    names, rows = cols["pl_name"], cols["_row"]
    seen: dict[str, int] = {}
    dups = []
    for i, n in enumerate(names):
        if n in seen:
            dups.append(f"{n!r} (rows {rows[seen[n]]} and {rows[i]})")
        seen.setdefault(n, i)
    if dups:
        raise IntegrityError(f"{len(dups)} duplicate planet names, e.g. {', '.join(dups[:5])}", path=str(path))
    for c in COLUMNS:
        if c.min is None:
            continue
        v = cols[c.name]
        bad = v <= c.min  # NaN compares False: missing is allowed
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise IntegrityError(
                f"row {rows[i]} (planet {names[i]!r}), column {c.name!r}: {float(v[i])} {c.units} is not physically possible (must be > {c.min})",
                path=str(path),
            )


def _load(source: Path, schema: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if schema == "exoplanet.eu":
        return _from_eu(_read_csv(source), source)
    is_xml = source.suffix.lower() in (".votable", ".vot", ".xml")
    wanted = NASA_REQUIRED + ("pl_bmassprov", "default_flag", "rowupdate") + tuple(f"{c}lim" for c in NUMERIC)
    return _from_nasa(read_votable(source, wanted) if is_xml else _read_csv(source), source)


# --- public API ------------------------------------------------------------------------------

def ingest_catalogue(source: str | Path, out: str | Path, *, schema: str) -> Path | str:
    """Ingest one planet catalogue into the table store at `out`; returns `out`.

    `schema` is "exoplanet.eu" (its CSV export, masses and radii in Jupiter units) or "nasa"
    (NASA Exoplanet Archive CSV or VOTable with pl_name, pl_rade, pl_bmasse, pl_orbper,
    pl_orbsmax, pl_eqt, pl_insol, st_teff, st_rad, st_mass). Re-running on unchanged inputs
    leaves the existing store untouched. Raises DataNotFoundError for a missing source,
    IntegrityError for missing columns, unparsable or impossible values, duplicate names.
    """
    if schema not in SCHEMAS:
        raise ConfigError(f"unknown catalogue schema {schema!r}; use one of {SCHEMAS}")
    source, out = Path(source), store_location(out)
    if not source.is_file():
        raise DataNotFoundError("catalogue file not found", path=str(source), hint="Pass the path of a catalogue CSV or VOTable")
    sources = sources_record([source])
    code = code_version(__file__, table.__file__, _group.__file__)
    digest = inputs_digest(sources, {"schema": schema}, code)
    if up_to_date(out, digest):
        log.info("%s is up to date with its inputs; nothing to do", out)
        return out
    cols, notes = _load(source, schema)
    _check(cols, source)
    credit = CREDITS[schema]
    cols["source"] = [credit["name"]] * len(cols["pl_name"])
    provenance = {
        "kind": "observation",
        "sources": sources,
        "command": command_line(),
        "inputs_digest": digest,
        "tools": {"astrobio": code, **tool_versions("pandas", "numpy", "zarr")},
    }
    return write_table(out, cols, described={"schema": schema, "credit": credit, "source_notes": notes},
                       provenance=provenance)


class CatalogueRequest(StrictRequest):
    """A planet catalogue (exoplanet.eu CSV, NASA Exoplanet Archive CSV or VOTable)."""

    source: SourcePath
    catalogue_schema: Literal["nasa", "exoplanet.eu"] = Field("nasa", alias="schema", description="the catalogue's column schema")


def _ingest_request(request: CatalogueRequest, out: Path | str, context: IngestContext) -> Path | str:
    return ingest_catalogue(Path(request.source), out, schema=request.catalogue_schema)


def _add_arguments(p: Any) -> None:
    p.add_argument("source", metavar="FILE", help="the catalogue file (CSV or VOTable)")
    p.add_argument("--schema", default="nasa", choices=list(SCHEMAS), help="catalogue column schema")


FORMAT = SourceFormat("catalogue", kind="table", request=CatalogueRequest, ingest=_ingest_request, add_arguments=_add_arguments,
                      to_values=lambda args: {"source": args.source, "schema": args.schema},
                      help="a planet catalogue (CSV or VOTable) -> a table store",
                      examples=("astrobio ingest catalogue --schema nasa --out planets.zarr planets.csv",))
