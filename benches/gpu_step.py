"""The GPU training step, measured: how much of each step the data loader takes, and samples/s.

    python benches/gpu_step.py [--steps 300] [--batch 32] [--workers 0,2] [--json out.json]
    python benches/gpu_step.py --dry-run        # CPU smoke run (CI): a few steps, all checks

Trains the datacube emulator on the default dataset's climate store (built on first use) with
what a CUDA run uses: the Rust core writing each batch (float32, or bfloat16 narrowed by the core)
into a pinned host buffer, non-blocking
host-to-device copies, bf16 autocast where the device supports it (fp16 + scaler otherwise),
and AdamW. For each loader setting it reports samples/s and the loader's share of the step
time (time waiting for the next batch / total step time; the GPU work is synchronized at the
end of each step so the split is honest). On a machine without CUDA only `--dry-run` makes
sense: the same code path on the CPU, float32, a handful of steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import astrobio
from astrobio.data import BatchIndexSampler, CubeBatchDataset, make_loader
from astrobio.datasets.default import default_part
from astrobio.models.datacube import DatacubeEmulator


def device_setup(dry_run: bool) -> tuple[torch.device, torch.dtype | None, str]:
    if torch.cuda.is_available() and not dry_run:
        name = torch.cuda.get_device_name(0)
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), amp, name
    return torch.device("cpu"), None, platform.processor() or "cpu"


def measure(store: astrobio.Store, device: torch.device, amp: torch.dtype | None, *, steps: int, batch: int,
            workers: int, batch_dtype: str = "float32", readahead: bool = True) -> dict[str, Any]:
    """Train `steps` steps; time the wait for each batch and the whole step."""
    cuda = device.type == "cuda"
    train = store.samples("train")
    sampler = BatchIndexSampler(train, batch, shuffle=True, seed=0, pad=True)
    loader = make_loader(CubeBatchDataset(store.path, "per_variable", dtype=batch_dtype), sampler,
                         num_workers=workers, pin_memory=cuda, readahead=readahead)
    model = DatacubeEmulator(len(store.params), store.sample_shape).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(enabled=amp is torch.float16)
    wait = total = 0.0
    done = samples = 0
    epoch = 0
    first_dtype = None
    while done < steps:
        sampler.set_epoch(epoch)
        it = iter(loader)
        while done < steps:
            t0 = time.perf_counter()
            try:
                b = next(it)
            except StopIteration:
                break
            x = b["params"].to(device, non_blocking=True)
            y = b["cubes"].to(device, non_blocking=True)
            first_dtype = first_dtype or str(b["cubes"].dtype)
            t1 = time.perf_counter()
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = torch.nn.functional.mse_loss(model(x).float(), y.float())
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if cuda:
                torch.cuda.synchronize()
            if not torch.isfinite(loss):
                raise SystemExit(f"non-finite loss at step {done}")
            t2 = time.perf_counter()
            if done >= 2:  # the first steps warm up kernels and workers
                wait += t1 - t0
                total += t2 - t0
                samples += len(y)
            done += 1
        epoch += 1
    return {"workers": workers, "readahead": readahead if workers == 0 else None, "steps": steps, "batch": batch, "batch_dtype": first_dtype,
            "samples_per_s": samples / total if total else float("nan"),
            "loader_share": wait / total if total else float("nan"),
            "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if cuda else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", default="0,2", help="comma-separated DataLoader worker counts to compare")
    ap.add_argument("--batch-dtypes", default="float32,bfloat16",
                    help="batch dtypes the core writes (bfloat16: narrowed by the core, half the bytes to copy)")
    ap.add_argument("--readahead", default="on,off",
                    help="without workers: read the next batch on a background thread into pinned memory (on), or not")
    ap.add_argument("--store", type=Path, default=None, help="climate store (default: the default dataset's)")
    ap.add_argument("--dry-run", action="store_true", help="CPU smoke run: 6 steps, batch 4, workers 0")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.dry_run:
        args.steps, args.batch, args.workers = 6, 4, "0"  # both read-ahead settings still run
    device, amp, name = device_setup(args.dry_run)
    store = astrobio.open_store(args.store or default_part("climate"))
    torch.manual_seed(0)
    settings = [(d, int(w), r == "on") for d in args.batch_dtypes.split(",") for w in args.workers.split(",")
                for r in (args.readahead.split(",") if int(w) == 0 else ["off"])]
    rows = [measure(store, device, amp, steps=args.steps, batch=args.batch, workers=w, batch_dtype=d, readahead=r)
            for d, w, r in settings]
    doc = {"device": name, "autocast": str(amp) if amp else "off (float32)", "torch": torch.__version__,
           "store": str(store.path), "sample_shape": list(store.sample_shape), "rows": rows,
           "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"device {name}, autocast {doc['autocast']}")
    print(f"{'workers':>7} {'read-ahead':>10} {'batch dtype':>14} {'samples/s':>10} {'loader share':>13}")
    for r in rows:
        ahead = "-" if r["readahead"] is None else ("on" if r["readahead"] else "off")
        print(f"{r['workers']:>7} {ahead:>10} {r['batch_dtype']:>14} {r['samples_per_s']:>10.1f} {r['loader_share']:>12.1%}")
        if not np.isfinite(r["samples_per_s"]) or not 0.0 <= r["loader_share"] <= 1.0:
            print("implausible measurement", file=sys.stderr)
            return 1
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
