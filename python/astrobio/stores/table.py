"""Table stores (format "astrobio.table"): the planet catalogue as one typed column per array,
in the common schema `COLUMNS` (NASA Exoplanet Archive names, Earth/Solar units); missing values
are NaN (numbers) or "" (strings), counted per column in the manifest, never filled.

Writing goes through the writer core (`stores._group`); `astrobio.ingest.catalogue` parses the
sources and hands the columns to `write_table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import IntegrityError
from . import _remote
from ._group import GroupWriter, content_digest, read_array, read_manifest
from .kinds import Description, expectation, histogram, moments

__all__ = ["Column", "COLUMNS", "NUMERIC", "FORMAT", "FORMAT_VERSION", "HINT", "open_table", "write_table", "digest",
           "KIND"]

FORMAT = "astrobio.table"
FORMAT_VERSION = 1
HINT = (
    "Build the default dataset with `astrobio datasets build default`, "
    "or write this table with astrobio.ingest.catalogue.ingest_catalogue(SOURCE, PATH, schema=...)"
)
MISSING_POLICY = "missing values are NaN (numbers) or '' (strings), never filled; counts per column"


@dataclass(frozen=True)
class Column:
    """A column of the common schema; numeric columns are float64 and must be > `min` when
    present (missing = NaN)."""

    name: str
    units: str
    description: str
    dtype: str = "float64"
    min: float | None = 0.0  # exclusive lower bound: every quantity here is strictly positive


COLUMNS: tuple[Column, ...] = (
    Column("pl_name", "", "planet name", dtype="string", min=None),
    Column("pl_rade", "R_earth", "planet radius"),
    Column("pl_bmasse", "M_earth", "planet best mass: true mass when known, else M sin i"),
    Column("pl_orbper", "day", "orbital period"),
    Column("pl_orbsmax", "AU", "orbit semi-major axis"),
    Column("pl_eqt", "K", "planet equilibrium temperature"),
    Column("pl_insol", "S_earth", "insolation flux (Earth = 1)"),
    Column("st_teff", "K", "stellar effective temperature"),
    Column("st_rad", "R_sun", "stellar radius"),
    Column("st_mass", "M_sun", "stellar mass"),
    Column("pl_bmassprov", "", "provenance of pl_bmasse: 'Mass', 'Msini' or 'Msin(i)/sin(i)'", dtype="string", min=None),
    Column("source", "", "catalogue the row comes from", dtype="string", min=None),
)
NUMERIC = tuple(c.name for c in COLUMNS if c.dtype == "float64")


def digest(manifest: Mapping[str, Any]) -> str:
    """The content digest of a table manifest (the one rule of `stores._group.content_digest`)."""
    return content_digest(manifest)


def write_table(out: str | Path, cols: Mapping[str, Any], *, described: Mapping[str, Any],
                provenance: Mapping[str, Any]) -> Path | str:
    """Write the columns `cols` (every name of `COLUMNS`) as the table store at `out` (a
    directory or an s3:// URL); returns where it was written.

    `described` holds the manifest fields that describe the data beyond the columns (schema,
    credit, source notes; covered by the content digest), `provenance` the build record.
    """
    n = len(cols["pl_name"])
    out = _remote.store_location(out)
    with GroupWriter(out) as g:
        for c in COLUMNS:
            data = cols[c.name]
            g.array(c.name, np.asarray(data, np.float64) if c.dtype == "float64" else data, ("row",))
        missing = {
            c.name: int(np.isnan(cols[c.name]).sum()) if c.dtype == "float64" else sum(1 for s in cols[c.name] if not s)
            for c in COLUMNS
        }
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": _remote.name_of(out),
            "schema": described["schema"],
            "n_rows": n,
            "key": "pl_name",
            "columns": [{**asdict(c), "missing": missing[c.name]} for c in COLUMNS],
            "missing": missing,
            "missing_policy": MISSING_POLICY,
            "credit": described["credit"],
            "source_notes": described["source_notes"],
            "digests": g.digests(),
        }
        manifest["content_digest"] = digest(manifest)
        manifest["provenance"] = dict(provenance)
        return g.commit(manifest)


def open_table(path: str | Path, *, verify: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table at `path` (a directory or an s3:// URL) as (DataFrame, manifest). Numeric
    columns are float64 with NaN for missing values; string columns use pandas' "string" dtype
    with <NA> for missing ones.

    Raises DataNotFoundError when there is no complete table store at `path` (with the command
    that builds it) and IntegrityError when the data no longer matches its recorded digests.
    """
    with _remote.local_view(path) as (root, label):  # a URL: one download, checked then read
        manifest = read_manifest(root, FORMAT, HINT, verify=verify, version=FORMAT_VERSION, label=label)
        data: dict[str, Any] = {}
        for c in manifest["columns"]:
            arr = read_array(root, c["name"], label)
            if c["dtype"] == "float64":
                data[c["name"]] = np.asarray(arr, np.float64)
            else:
                data[c["name"]] = pd.array([s if s else None for s in arr.tolist()], dtype="string")
    df = pd.DataFrame(data)
    if len(df) != manifest["n_rows"]:
        raise IntegrityError(f"table has {len(df)} rows, the manifest records {manifest['n_rows']}", path=label)
    return df, manifest


class TableKind:
    """The table store as a store kind: one split ("all"), statistics and histograms of its
    numeric columns (missing values left out), no duplicate key or row."""

    name = "table"
    formats = (FORMAT,)

    def open(self, location: Path | str, *, verify: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
        return open_table(location, verify=verify)

    def verify(self, location: Path | str) -> tuple[bool, str]:
        df, _ = open_table(location, verify=True)
        return True, f"{len(df)} rows x {df.shape[1]} columns"

    def check(self, location: Path | str) -> dict[str, Any]:
        open_table(location, verify=True)
        return {}

    def digest(self, manifest: Mapping[str, Any]) -> str:
        return digest(manifest)

    def describe(self, location: Path | str, manifest: Mapping[str, Any]) -> Description:
        summary = {"format": manifest["format"], "format_version": manifest["format_version"], "n_rows": manifest["n_rows"],
                   "columns": [c["name"] for c in manifest["columns"]], "key": manifest.get("key"), "schema": manifest.get("schema")}
        return Description({"all": {"runs": 1, "samples": int(manifest["n_rows"])}}, summary)

    def _numeric(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, np.ndarray]:
        df, _ = open_table(location, verify=False)
        return {c["name"]: np.asarray(df[c["name"]], np.float64) for c in manifest["columns"] if c["dtype"] == "float64"}

    def statistics(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        return {k: moments(v) for k, v in self._numeric(location, manifest).items()}

    def histograms(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, list[float]]]:
        return {k: histogram(v) for k, v in self._numeric(location, manifest).items()}

    def expectations(self, location: Path | str, manifest: Mapping[str, Any], scan: Mapping[str, Any]) -> list[dict[str, Any]]:
        df, _ = open_table(location, verify=False)
        key = manifest.get("key") or df.columns[0]
        dup_keys = int(df[key].duplicated().sum())
        dup_rows = int(df.duplicated().sum())
        return [expectation("expect_no_duplicate_samples", dup_keys == 0 and dup_rows == 0,
                            {"duplicate_keys": dup_keys, "duplicate_rows": dup_rows}, 0, {"key": key})]


KIND = TableKind()
