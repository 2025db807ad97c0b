"""Train the climate emulator on your own store through the trainer's Python API.

    python examples/train_own_store.py [--max-epochs 5] [--out DIR]

"Your" cubes here are real: eight ExoPlaSim planets from astrobio's default climate store,
read back as numpy arrays in physical units (raw values plus one parameter row per sample), as a
researcher holding GCM output in numpy would. They are written into a new store with
`astrobio.write_store` (your split by planet), then trained with `astrobio.train.train`, the
same function `python -m astrobio.train` calls. The result carries the run folder, checkpoints
and the held-out table beside the climatology baseline.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import astrobio
from astrobio.datasets import default_part
from astrobio.train import TrainConfig, train


def your_cubes(n_runs: int = 8) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], astrobio.Store]:
    """run id -> (cubes [T, V, L, H, W] in physical units, params [T, P]): stand in for your own arrays."""
    source = astrobio.open_store(default_part("climate"))
    raw = astrobio.CubeReader(source.path, normalize="none")
    runs = {}
    for run in source.runs[:n_runs]:
        batch = raw.read(np.arange(run.start, run.start + run.count))
        runs[run.id] = (batch.cubes, batch.params)
    return runs, source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-epochs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="folder for the store and the run (default: temporary)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="astrobio-example-"))

    runs, source = your_cubes()
    ids = list(runs)
    # Split by planet, never by sample: held-out planets are what an emulator is judged on.
    split = {"train": ids[:-2], "val": ids[-2:-1], "test": ids[-1:]}
    path = astrobio.write_store(out / "my_climate.zarr", [(k, c, p) for k, (c, p) in runs.items()],
                                variables=source.variables, params=source.params, split=split)
    print(f"wrote {astrobio.open_store(path)}")

    cfg = TrainConfig.for_model("datacube")       # the model's defaults; then yours
    cfg.data.store = str(path)
    cfg.trainer.max_epochs = args.max_epochs
    cfg.trainer.output_dir = str(out / "run")
    cfg.trainer.progress_bar = False
    result = train(cfg)                           # checkpoints, early stopping, evaluation, plots
    print(result.table)
    test = result.summary["evaluation"]["test"]   # the held-out planet, beside the climatology
    print(f"outputs in {result.run_dir}; test RMSE {test['model']['rmse']:.3f} vs climatology "
          f"{test['climatology']['rmse']:.3f}")


if __name__ == "__main__":
    main()
