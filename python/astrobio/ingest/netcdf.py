"""The one NetCDF reader of astrobio (xarray): climate ingest and the ExoPlaSim output reader
(`astrobio.simulate.output`) both open files through it."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from ..errors import DataNotFoundError, IntegrityError, first_line

__all__ = ["open_netcdf"]


def open_netcdf(source: str | Path, *, decode: bool = True) -> tuple[xr.Dataset, list[Path]]:
    """Open one NetCDF file, or every *.nc file of a folder merged by coordinates; returns the
    dataset (the caller closes it) and the files read.

    `decode=False` keeps the stored values as written: no fill-value masking and no
    scale/offset unpacking (ExoPlaSim writes plain float32 fields, and a NaN in them must be
    seen as a NaN, not hidden behind a fill value).
    """
    source = Path(source)
    files = sorted(source.glob("*.nc")) if source.is_dir() else [source]
    if not source.exists() or not files:
        raise DataNotFoundError("no NetCDF files", path=str(source), hint="Pass a .nc file or a folder of .nc files")
    try:
        parts = [xr.open_dataset(f, decode_timedelta=False, mask_and_scale=decode, decode_times=decode) for f in files]
        ds = xr.merge(parts, compat="no_conflicts", join="outer", combine_attrs="drop_conflicts")
        ds.set_close(lambda: [p.close() for p in parts])  # closing the merged view closes every file
    except (OSError, ValueError) as e:
        raise IntegrityError(f"cannot read NetCDF: {first_line(e)}", path=str(source)) from e
    return ds, files
