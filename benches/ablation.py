"""Before/after of the core's optimizations, in one process: several builds of the native
module (`_core` shared objects, e.g. built from older commits) read the same stores, interleaved.

    python benches/ablation.py --so v0=/tmp/core_v0.so --so v1=/tmp/core_v1.so STORE [STORE ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def load(path: str):
    spec = importlib.util.spec_from_file_location("_core", path)  # PyInit__core: the name must be _core
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stores", nargs="+", type=Path)
    ap.add_argument("--so", action="append", required=True, help="NAME=PATH of a built _core module")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    mods = {k: load(v) for k, v in (s.split("=", 1) for s in args.so)}
    readers = {(k, str(s)): m.BatchReader(str(s), "per_variable", args.threads) for k, m in mods.items() for s in args.stores}
    first = next(iter(readers.values()))
    out = np.empty((16, *first.sample_shape), np.float32)
    ref = first.read_batch(list(range(16))).copy()
    for key, r in readers.items():
        np.testing.assert_array_equal(r.read_batch(list(range(16)), out), ref, err_msg=str(key))
    n = first.n_samples
    batches = [[(j * 16 + i) % n for i in range(16)] for j in range(args.batches)]
    times: dict[tuple[str, str], list[float]] = {k: [] for k in readers}
    for _ in range(args.rounds):
        for key, r in readers.items():
            t0 = time.perf_counter()
            for b in batches:
                r.read_batch(b, out)
            times[key].append(time.perf_counter() - t0)
    res = {f"{k} {Path(s).name}": len(batches) * out.nbytes / statistics.median(t) / 1e9 for (k, s), t in times.items()}
    for k, v in res.items():
        print(f"{k:<40} {v:6.2f} GB/s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
