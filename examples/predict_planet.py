"""Use a trained climate emulator: train it briefly on the default climate dataset, predict
Earth (a planet no training run simulated), open the prediction in xarray and plot a map.

    python examples/predict_planet.py --max-epochs 3 --out earth_example

The same from the command line (docs/emulator.md):

    python -m astrobio.train --output-dir runs/base
    astrobio predict runs/base --planet earth --out earth.nc
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import xarray as xr

import astrobio
from astrobio.emulator.fields import write_dataset
from astrobio.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-epochs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("earth_example"))
    args = ap.parse_args()

    cfg = TrainConfig()  # the default climate store, built from the shipped ExoPlaSim pack on first use
    cfg.trainer.output_dir, cfg.trainer.max_epochs = str(args.out / "run"), args.max_epochs
    cfg.trainer.progress_bar, cfg.trainer.logger = False, "none"
    run = args.out / "run"
    if not (run / "summary.json").is_file():
        train(cfg)

    emulator = astrobio.load_emulator(run)
    earth = emulator.predict("earth")  # an xarray.Dataset in physical units, CF attributes
    path = write_dataset(earth, args.out / "earth.nc")

    ds = xr.open_dataset(path)  # any CF tool reads it: coordinates lat, lon, level (sigma)
    ta = ds["ta"].sel(planet="Earth").sel(level=ds["level"].max())  # the lowest model level
    print(f"{path}: {dict(ds.sizes)}; lowest-level ta {float(ta.min()):.1f} to {float(ta.max()):.1f} {ta.attrs['units']}")

    fig, ax = plt.subplots(figsize=(8, 4))
    ta.plot(ax=ax, cmap="inferno", cbar_kwargs={"label": f"ta [{ta.attrs['units']}]"})
    ax.set_title(f"Emulated Earth: air temperature at sigma = {float(ta['level']):.3f}")
    fig.tight_layout()
    fig.savefig(args.out / "earth_ta.png", dpi=100)
    print(f"map: {args.out / 'earth_ta.png'}")


if __name__ == "__main__":
    main()
