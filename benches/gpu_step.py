"""The GPU training step, measured: how much of each step the data loader takes, samples/s, GPU
utilization and energy, for every model.

    python benches/gpu_step.py [--steps 300] [--batch 32] [--model-steps 60] [--json PATH]
    python benches/gpu_step.py --dry-run        # CPU smoke run (CI): every row's code path, a few steps

Two tables:

- **Loader rows** (the datacube emulator on the default dataset's climate store, a plain training
  loop): the Rust core writing each batch (float32, or bfloat16 narrowed by the core) into a
  pinned host buffer, non-blocking host-to-device copies, bf16 autocast where the device supports
  it (fp16 + scaler otherwise), AdamW; for each loader setting (workers, read-ahead and its depth,
  batch dtype) samples/s and the loader's share of the step time (waiting for the next batch /
  whole step; the GPU is synchronized at the end of each step so the split is honest).
- **Model rows** (benches/gpu_models.py): every model (datacube, a larger datacube whose step the
  GPU sets, multimodal, graph, detector once its task exists, language) through the trainer's own
  task, module and precision, at the task's default batch and at a batch that fills the GPU as far
  as the data allows: samples/s, the loader's share, mean GPU utilization (NVML) and GPU energy per
  epoch.

Results go to docs/performance-gpu.json on a CUDA machine (`--json` to change), with top-level
`default_loader_share` and `gpu_utilization` (the datacube model row at its default batch). On a
machine without CUDA only `--dry-run` runs: the same code paths on the CPU, a few steps, batch 2
and 4, written to a temporary file marked `"dry_run": true` (never to the docs file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import astrobio
from astrobio.data import BatchIndexSampler, CubeBatchDataset, available_cores, make_loader
from astrobio.datasets.default import default_part
from astrobio.models.datacube import DatacubeEmulator
from astrobio.train.resources import ResourceMonitor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_models import MODELS, fill_batch, model_row  # noqa: E402

DOCS_JSON = Path(__file__).resolve().parent.parent / "docs" / "performance-gpu.json"


def device_setup(dry_run: bool) -> tuple[torch.device, torch.dtype | None, str]:
    if torch.cuda.is_available() and not dry_run:
        name = torch.cuda.get_device_name(0)
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), amp, name
    return torch.device("cpu"), None, platform.processor() or "cpu"


def measure(store: astrobio.Store, device: torch.device, amp: torch.dtype | None, *, steps: int, batch: int,
            workers: int, batch_dtype: str = "float32", readahead: bool = True, depth: int | None = None) -> dict[str, Any]:
    """Train `steps` steps; time the wait for each batch and the whole step."""
    cuda = device.type == "cuda"
    train = store.samples("train")
    sampler = BatchIndexSampler(train, batch, shuffle=True, seed=0, pad=True)
    dataset = CubeBatchDataset(store.path, "per_variable", dtype=batch_dtype)
    loader = make_loader(dataset, sampler, num_workers=workers, pin_memory=cuda, readahead=readahead, depth=depth)
    monitor = ResourceMonitor(sample_period_s=0.1)
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
            if done == 2:
                monitor.start()
            if done >= 2:  # the first steps warm up kernels and workers
                wait += t1 - t0
                total += t2 - t0
                samples += len(y)
            done += 1
        epoch += 1
    res = monitor.stop() if monitor.started is not None else {}
    util = res.get("gpu_utilization_mean_pct")
    ahead = readahead and workers == 0
    return {"workers": workers, "readahead": ahead if workers == 0 else None,
            "depth": (depth if depth is not None else "auto") if ahead else None,
            "depth_reached": dataset.ahead_depth() if ahead else None, "core_threads": dataset.reader.threads,
            "steps": steps, "batch": batch, "batch_dtype": first_dtype,
            "samples_per_s": samples / total if total else float("nan"),
            "loader_share": wait / total if total else float("nan"),
            "gpu_utilization": None if util is None else util / 100.0,
            "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if cuda else None}


def _loader_settings(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for dtype in args.batch_dtypes.split(","):
        for w in (int(x) for x in args.workers.split(",")):
            if w > 0:
                out.append({"batch_dtype": dtype, "workers": w, "readahead": False})
                continue
            for r in args.readahead.split(","):
                depths = args.depths.split(",") if r == "on" else ["1"]
                for d in depths:
                    out.append({"batch_dtype": dtype, "workers": 0, "readahead": r == "on",
                                "depth": None if d == "auto" else int(d)})
    return out


def _output_path(args: argparse.Namespace, cuda: bool) -> Path:
    """Where the results go: never the docs file from a dry run or a CPU."""
    if args.dry_run or not cuda:
        if args.json is not None and args.json.resolve() == DOCS_JSON:
            raise SystemExit(f"refusing to write CPU / dry-run numbers to {DOCS_JSON}")
        return args.json or Path(tempfile.gettempdir()) / f"gpu_step-dry-run-{os.getpid()}.json"
    return args.json or DOCS_JSON


def _model_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    chosen = args.models.split(",")
    extra = {"data": {"graphs": str(args.graphs)}} if args.graphs else {}
    rows = []
    for name, task, overrides in MODELS:
        if name not in chosen:
            continue
        small = args.batch_default or None
        row = model_row(name, task, overrides, batch=small, steps=args.model_steps, warmup=args.warmup,
                        extra=extra if task in ("graph", "language") else {})
        rows.append({**row, "batch_kind": "default"})
        if row["status"] != "ok" or (args.dry_run and len(rows) > 1):  # a dry run: the large batch's path once
            continue
        examples = row["batches_per_epoch"] * row["batch"]
        big = args.batch_fill or fill_batch(examples, row["batch"], args.fill_cap)
        if big == row["batch"]:
            continue
        try:
            fill = model_row(name, task, overrides, batch=big, steps=args.model_steps, warmup=args.warmup,
                             extra=extra if task in ("graph", "language") else {})
        except torch.cuda.OutOfMemoryError:  # the data allow more than the GPU holds: say so
            fill = {"model": name, "status": "out of GPU memory", "batch": big}
        rows.append({**fill, "batch_kind": "fills the GPU"})
    return rows


def _print(doc: dict[str, Any]) -> None:
    print(f"device {doc['device']}, autocast {doc['autocast']}, {doc['cores']} cores, torch {doc['torch']}")
    print(f"{'workers':>7} {'ahead':>6} {'depth':>5} {'threads':>7} {'dtype':>14} {'samples/s':>10} {'loader':>7} {'GPU util':>8}")
    for r in doc["loader_rows"]:
        ahead = "-" if r["readahead"] is None else ("on" if r["readahead"] else "off")
        util = "-" if r["gpu_utilization"] is None else f"{r['gpu_utilization']:.0%}"
        print(f"{r['workers']:>7} {ahead:>6} {str(r['depth'] or '-'):>5} {r['core_threads']:>7} {r['batch_dtype']:>14} "
              f"{r['samples_per_s']:>10.1f} {r['loader_share']:>7.1%} {util:>8}")
    print(f"\n{'model':>15} {'batch':>6} {'samples/s':>10} {'loader':>7} {'between':>8} {'GPU util':>8} {'J/epoch':>8}")
    for r in doc["model_rows"]:
        if r["status"] != "ok":
            print(f"{r['model']:>15} {r.get('batch', '-')!s:>6}  {r['status']}: {r.get('reason', '')}")
            continue
        util = "-" if r["gpu_utilization"] is None else f"{r['gpu_utilization']:.0%}"
        energy = "-" if r["gpu_energy_per_epoch_j"] is None else f"{r['gpu_energy_per_epoch_j']:.1f}"
        print(f"{r['model']:>15} {r['batch']:>6} {r['samples_per_s']:>10.1f} {r['loader_share']:>7.1%} "
              f"{r['between_steps_share']:>8.1%} {util:>8} {energy:>8}")


def _plausible(doc: dict[str, Any]) -> bool:
    rows = doc["loader_rows"] + [r for r in doc["model_rows"] if r["status"] == "ok"]
    return all(np.isfinite(r["samples_per_s"]) and 0.0 <= r["loader_share"] <= 1.0 for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="timed steps of each loader row")
    ap.add_argument("--batch", type=int, default=32, help="the loader rows' batch")
    ap.add_argument("--workers", default="0,2", help="comma-separated DataLoader worker counts to compare")
    ap.add_argument("--batch-dtypes", default="float32,bfloat16",
                    help="batch dtypes the core writes (bfloat16: narrowed by the core, half the bytes to copy)")
    ap.add_argument("--readahead", default="on,off",
                    help="without workers: read the next batches on background threads into pinned memory (on), or not")
    ap.add_argument("--depths", default="auto,1", help="read-ahead depths to compare (auto: decided by the loader)")
    ap.add_argument("--models", default=",".join(name for name, _, _ in MODELS), help="model rows to run ('' for none)")
    ap.add_argument("--model-steps", type=int, default=60, help="timed steps of each model row")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (kernels, workers, autotuning)")
    ap.add_argument("--batch-default", type=int, default=0, help="model rows' small batch (0: each task's default)")
    ap.add_argument("--batch-fill", type=int, default=0, help="model rows' large batch (0: the largest power of two the data allow, up to --fill-cap)")
    ap.add_argument("--fill-cap", type=int, default=1024)
    ap.add_argument("--graphs", type=Path, default=None, help="metabolic store for graph and language (default: the default dataset's)")
    ap.add_argument("--store", type=Path, default=None, help="climate store (default: the default dataset's)")
    ap.add_argument("--dry-run", action="store_true", help="CPU smoke run: every row, 3 timed steps, batches 2 and 4")
    ap.add_argument("--json", type=Path, default=None, help=f"results (default: {DOCS_JSON} on CUDA; a temp file otherwise)")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.steps, args.batch, args.workers, args.depths = 6, 4, "0,1", "auto,2"
        args.model_steps, args.warmup, args.batch_default, args.batch_fill = 3, 1, 2, 4
    device, amp, name = device_setup(args.dry_run)
    out = _output_path(args, device.type == "cuda")
    store = astrobio.open_store(args.store or default_part("climate"))
    torch.manual_seed(0)
    loader_rows = [measure(store, device, amp, steps=args.steps, batch=args.batch, **s) for s in _loader_settings(args)]
    model_rows = _model_rows(args) if args.models else []
    headline = next((r for r in model_rows if r["model"] == "datacube" and r["batch_kind"] == "default"
                     and r["status"] == "ok"), None)
    doc = {"dry_run": bool(args.dry_run), "device": name, "cores": available_cores(),
           "autocast": str(amp) if amp else "off (float32)", "torch": torch.__version__,
           "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "default_loader_share": headline["loader_share"] if headline else None,
           "gpu_utilization": headline["gpu_utilization"] if headline else None,
           "headline_row": "model datacube at its default batch (the default job's configuration)",
           "store": str(store.path), "sample_shape": list(store.sample_shape),
           "loader_rows": loader_rows, "model_rows": model_rows}
    _print(doc)
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"results: {out}{' (dry run)' if args.dry_run else ''}")
    if not _plausible(doc):
        print("implausible measurement", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
