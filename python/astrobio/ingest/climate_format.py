"""The "climate" source format: NetCDF or zarr climate runs -> a cube store. Its request model
(the REST collect body's fields), its command-line syntax (`astrobio ingest climate RUN=PATH
--var V ...`) and the call into `ingest_climate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field

from ..errors import ConfigError
from .formats import IngestContext, SourceFormat, SourcePath, StrictRequest, pairs

__all__ = ["ClimateRequest", "FORMAT"]

RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
VarName = Annotated[str, Field(min_length=1, max_length=128)]


class ClimateRequest(StrictRequest):
    """A climate run set: run id -> .nc file, folder of .nc files, or zarr group."""

    runs: dict[RunId, SourcePath] = Field(min_length=1, max_length=512, description="run id -> source")
    variables: list[VarName] = Field(min_length=1, max_length=64, description="variables to ingest")
    split: dict[Literal["train", "val", "test"], list[RunId]] | None = Field(None, description="runs per split")
    units: dict[str, str] = Field(default_factory=dict, description="units where the source lacks them")
    valid_ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="physical valid range per variable (inclusive; null: open side)")
    # "kind" is its older name (REST bodies and `--kind` written before the rename still work)
    origin: Literal["simulation", "observation"] = Field("simulation", validation_alias=AliasChoices("origin", "kind"),
                                                         description="simulation or observation (recorded)")
    shard_samples: int | None = Field(None, ge=1, description="pack this many consecutive samples into one object")


def ingest(request: ClimateRequest, out: Path | str, context: IngestContext) -> Path | str:
    from .climate import Grid, ingest_climate  # xarray loads when a climate ingest runs

    return ingest_climate(request.runs, out, variables=request.variables, grid=Grid(), split=request.split,
                          units=request.units, valid_ranges=request.valid_ranges, origin=request.origin,
                          name=context.dataset, caller="cli" if context.caller == "cli" else "api",
                          shard_samples=request.shard_samples)


def _ranges(items: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """--range VAR=LO:HI (either side may be empty: open-ended) -> {VAR: (lo, hi)}."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for var, spec in pairs(items, "--range").items():
        lo_s, sep, hi_s = spec.partition(":")
        try:
            if not sep:
                raise ValueError
            lo = float(lo_s) if lo_s.strip() else None
            hi = float(hi_s) if hi_s.strip() else None
        except ValueError:
            raise ConfigError(f"--range must look like VAR=LO:HI (a side may be empty, e.g. ta=10:1500 or hus=0:), "
                              f"got {var}={spec}") from None
        out[var] = (lo, hi)
    return out


def split_arg(items: list[str]) -> dict[str, list[str]] | None:
    """--split SPLIT=run,run (repeatable) -> {split: [runs]} (None when not given)."""
    return {k: [r for r in v.split(",") if r] for k, v in pairs(items, "--split").items()} or None


def add_arguments(i: argparse.ArgumentParser) -> None:
    i.add_argument("sources", nargs="+", metavar="RUN_ID=PATH", help="a .nc file, a folder of .nc files, or a zarr group")
    i.add_argument("--var", action="append", default=[], help="variable to ingest (repeatable)")
    i.add_argument("--units", action="append", default=[], help="VAR=UNITS where the source lacks them (repeatable)")
    i.add_argument("--range", action="append", default=[], metavar="VAR=LO:HI",
                   help="physical valid range of VAR, inclusive; a side may be empty (repeatable). Without it, "
                        "the CF default for the variable's standard_name and units applies (docs/store-format.md)")
    i.add_argument("--origin", "--kind", dest="origin", default="simulation", choices=["simulation", "observation"],
                   help="where the data comes from, recorded in the provenance (--kind: its older name)")
    i.add_argument("--split", action="append", default=[], help="SPLIT=run,run (repeatable)")
    i.add_argument("--shard-samples", type=int, default=None, metavar="N",
                   help="pack N consecutive samples into one object (for samples well under 1 MB on object storage)")


def to_values(args: argparse.Namespace) -> dict[str, Any]:
    runs = pairs(args.sources, "a run")
    if not args.var:
        raise ConfigError("name the variables to ingest with --var (repeatable)")
    units, ranges = pairs(args.units, "--units"), _ranges(args.range)
    for flag, given in (("--units", units), ("--range", ranges)):
        stray = sorted(set(given) - set(args.var))
        if stray:
            raise ConfigError(f"{flag} names {', '.join(stray)}, not among the variables ingested (--var {' --var '.join(args.var)})")
    return {"runs": runs, "variables": args.var, "split": split_arg(args.split), "units": units, "valid_ranges": ranges,
            "origin": args.origin, "shard_samples": args.shard_samples}


FORMAT = SourceFormat(
    "climate", kind="cube", request=ClimateRequest, ingest=ingest, add_arguments=add_arguments, to_values=to_values,
    help="NetCDF or zarr climate runs -> a cube store",
    examples=("astrobio ingest climate --out runs.zarr --var ta --var ua run-a=run_a.nc run-b=runs/b/",
              "astrobio ingest climate --out era.zarr --var t --range t=150:350 --units rh=% --var rh era=era5.zarr",
              "astrobio ingest climate --out s3://bucket/runs.zarr --var ta run-a=run_a.nc"))
