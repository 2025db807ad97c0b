"""DataLoader workers against the main process, on the default dataset's climate store: why
workers were slower, and what each change gives (docs/performance.md, "Workers").

    python benches/loader_workers.py [--epochs 20] [--batch 32] [--rounds 3] [--json out.json]

Every setting reads the same epochs of the train split (batch 32 of [5, 10, 32, 64] samples, as
the GPU benchmark does) and only consumes the batches, so the rows compare the loaders alone.
Settings run in turn for several interleaved rounds (medians; the machine may be shared):

  main                the main process, no read-ahead (the CPU default)
  main ahead d=k      the main process reading k batches ahead on background threads
  w=N 1t              N workers with one core thread each (the policy before: the workers were
                      the parallelism), workers restarted every epoch
  w=N split           N workers sharing the cores (choose_threads: cores // N core threads each)
  w=N split persist   the same with persistent workers (no restart per epoch)

Every setting's first epoch is checked equal, batch for batch, to the main process's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import astrobio
from astrobio.data import BatchIndexSampler, CubeBatchDataset, available_cores, make_loader
from astrobio.datasets.default import default_part


def run(store: astrobio.Store, setting: dict[str, Any], *, epochs: int, batch: int) -> tuple[float, list[Any]]:
    """Seconds for `epochs` epochs of one setting, and its first epoch's (indices, checksum) list."""
    workers = setting.get("workers", 0)
    ds = CubeBatchDataset(store.path, threads=setting.get("threads"))
    sampler = BatchIndexSampler(store.samples("train"), batch, shuffle=True, seed=0)
    loader = make_loader(ds, sampler, num_workers=workers, readahead=setting.get("readahead", False),
                         depth=setting.get("depth"), persistent_workers=setting.get("persistent", False),
                         multiprocessing_context="fork" if workers else None, pin_memory=False)
    first: list[Any] = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for b in loader:
            if epoch == 0:
                first.append((b["index"].tolist(), float(b["cubes"].double().sum())))
    return time.perf_counter() - t0, first


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare with the main process")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    store = astrobio.open_store(default_part("climate"))
    settings: dict[str, dict[str, Any]] = {"main": {}, "main ahead d=1": {"readahead": True, "depth": 1},
                                           "main ahead d=3": {"readahead": True, "depth": 3}}
    for w in (int(x) for x in args.workers.split(",")):
        settings[f"w={w} 1t"] = {"workers": w, "threads": 1}
        settings[f"w={w} split"] = {"workers": w}
        settings[f"w={w} split persist"] = {"workers": w, "persistent": True}
    times: dict[str, list[float]] = {k: [] for k in settings}
    reference = None
    for r in range(args.rounds):
        for name, setting in settings.items():
            seconds, first = run(store, setting, epochs=args.epochs, batch=args.batch)
            if reference is None:
                reference = first
            elif first != reference:
                print(f"{name}: batches differ from the main process's", file=sys.stderr)
                return 1
            times[name].append(seconds)
            print(f"round {r} {name:>22}: {seconds:.2f} s", flush=True)
    n_batches = args.epochs * len(BatchIndexSampler(store.samples("train"), args.batch))
    base = statistics.median(times["main"])
    rows = {k: {"median_s": statistics.median(v), "rounds_s": v, "batches_per_s": n_batches / statistics.median(v),
                "speed_vs_main": base / statistics.median(v)} for k, v in times.items()}
    print(f"\n{'setting':>22} {'batches/s':>10} {'vs main':>8}")
    for k, row in rows.items():
        print(f"{k:>22} {row['batches_per_s']:>10.1f} {row['speed_vs_main']:>7.2f}x")
    doc = {"cores": available_cores(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "load_average": os.getloadavg(), "epochs": args.epochs, "batch": args.batch, "rows": rows,
           "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
