"""How fast the trained climate emulator replaces the GCM: planets per second and simulated
model-years per second, against ExoPlaSim's measured wall time (docs/climate-campaign.md: a
median of 187 s per T21 model year on one core; the campaign's 48 planets took 106 model years
to settle, 2.21 per planet).

    python benches/emulator_speed.py RUN [--threads 1] [--rounds 5] [--json out.json]
    python benches/emulator_speed.py --quick     # trains a one-epoch run first; a smoke run for CI

One prediction is one planet's settled monthly-mean climate (all 5 x 10 x 32 x 64 values), what a
campaign run delivers after its spin-up; so the emulator's planets/s is compared with one GCM
planet (2.21 model years x 187 s = 413 s), and its model-years/s counts each prediction as one
model year (the conservative reading). Timings: interleaved rounds of `Emulator.predict_physical`
(parameters in, physical fields out, ensemble mean included) at batch sizes 1 and 64, median of
the rounds, on one process with `--threads` torch threads (ExoPlaSim's 187 s is one core). It also
checks that a batch's predictions equal the one-planet predictions (a fast wrong answer never wins).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

GCM_S_PER_MODEL_YEAR = 187.0  # docs/climate-campaign.md, median over the campaign, one core
GCM_YEARS_PER_PLANET = 106 / 48  # model years to settle, campaign mean


def planets(emulator, n: int) -> np.ndarray:
    """n parameter rows spread over the training ranges (evenly spaced per parameter, shuffled
    by a fixed permutation so the columns are not all at the same quantile)."""
    cols = []
    for j, name in enumerate(emulator.param_names):
        lo, hi = emulator.training_range[name]
        col = np.linspace(lo, hi, n)
        cols.append(col[np.roll(np.arange(n), 7 * j)])
    return np.stack(cols, axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", help="a training run folder (or ensemble folder)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (ExoPlaSim's figure is one core)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--planets", type=int, default=256, help="planets per timed pass")
    ap.add_argument("--quick", action="store_true", help="smoke run: train one epoch, one round, few planets")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from astrobio.emulator import load_emulator

    run = args.run
    if args.quick:
        args.rounds, args.planets = 1, 16
        if run is None:
            from astrobio.train import TrainConfig, train

            cfg = TrainConfig()
            cfg.trainer.output_dir = str(Path(tempfile.mkdtemp()) / "run")
            cfg.trainer.max_epochs, cfg.trainer.progress_bar, cfg.trainer.logger, cfg.trainer.plots = 1, False, "none", False
            run = train(cfg).run_dir
    if run is None:
        ap.error("give a run folder (or --quick)")
    emulator = load_emulator(run)
    rows = planets(emulator, args.planets)

    # check: batched predictions equal one-at-a-time ones (normalized units, float32 rounding)
    ref = np.concatenate([emulator.predict_physical(rows[i : i + 1])[0] for i in range(4)])
    batched = emulator.predict_physical(rows[:4])[0]
    worst = float((np.abs(batched - ref) / emulator.norm.scale[:, :, None, None]).max())
    if worst > 1e-4:
        print(f"FAIL: batched predictions differ from single ones by {worst:.2e} (normalized)", file=sys.stderr)
        return 1

    timings: dict[int, list[float]] = {1: [], 64: []}
    emulator.predict_physical(rows[:64], batch_size=64)  # warm-up (oneDNN kernels, allocations)
    for _ in range(args.rounds):
        for bs in timings:
            n = min(len(rows), 32 if bs == 1 else len(rows))
            t0 = time.perf_counter()
            for start in range(0, n, bs):
                emulator.predict_physical(rows[start : min(n, start + bs)], batch_size=bs)
            timings[bs].append(n / (time.perf_counter() - t0))
    gcm_planet_s = GCM_S_PER_MODEL_YEAR * GCM_YEARS_PER_PLANET
    result = {"run": str(emulator.run_dir), "members": len(emulator.members), "threads": args.threads,
              "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
              "gcm_s_per_model_year": GCM_S_PER_MODEL_YEAR, "gcm_years_per_planet": GCM_YEARS_PER_PLANET, "batch": {}}
    print(f"emulator {emulator.run_dir} ({len(emulator.members)} member(s)), {args.threads} thread(s); batched == single "
          f"(max diff {worst:.1e} normalized)")
    print(f"{'batch':>5}  {'planets/s':>10}  {'model-years/s':>13}  {'speedup per planet':>18}  {'speedup per model year':>22}")
    for bs, rates in timings.items():
        rate = statistics.median(rates)
        row = {"planets_per_s": rate, "model_years_per_s": rate, "speedup_per_planet": rate * gcm_planet_s,
               "speedup_per_model_year": rate * GCM_S_PER_MODEL_YEAR, "rounds": rates}
        result["batch"][bs] = row
        print(f"{bs:>5}  {rate:>10.1f}  {rate:>13.1f}  {row['speedup_per_planet']:>17.3g}x  {row['speedup_per_model_year']:>21.3g}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
