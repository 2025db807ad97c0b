"""The default dataset's climate pack, regenerated from finished simulations: every run's
result (`astrobio.simulate.output`) collected into one float16 pack in the format
`astrobio.datasets.climate` builds the climate store from (`astrobio datasets pack-climate`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._fsutil import atomic_write
from ..datasets.climate import PACK_CODEC, PACK_FORMAT, VARIABLES, pack_path
from ..errors import DataNotFoundError, IntegrityError
from .output import load_result

__all__ = ["pack_results"]


def pack_results(results_dir: Path, out_dir: Path, split: Mapping[str, Sequence[str]]) -> tuple[Path, Path]:
    """Collect finished runs (`<results_dir>/<run>/result.npz|json`) into one float16 pack.

    float16 keeps ~3 significant digits (0.125 K at 250 K, 0.06 m/s at 100 m/s); the pack
    records this, and the store's statistics are computed from the float32 values decoded from it.
    """
    runs = sorted(p.parent for p in Path(results_dir).glob("*/result.json"))
    if not runs:
        raise DataNotFoundError("no finished simulation results", path=str(results_dir),
                                hint="Run `astrobio simulate --all --out DIR` first")
    cubes, meta, coords = [], [], None
    for run_dir in runs:
        r = load_result(run_dir)
        c = {k: np.asarray(v).tolist() for k, v in r.coords.items()}
        if coords is None:
            coords = c
        elif c != coords:
            raise IntegrityError("grid differs from the other runs", run=run_dir.name)
        cubes.append(r.data.astype(np.float16))
        meta.append({"id": run_dir.name, "spec": r.provenance.get("planet", {}), "provenance": r.provenance, "units": r.units})
    ids = [m["id"] for m in meta]
    for name, members in split.items():
        missing = set(members) - set(ids)
        if missing:
            raise IntegrityError(f"split {name!r} names runs without results: {sorted(missing)}")
    held_out = {r for name, members in split.items() if name != "train" for r in members}
    full_split = {"train": list(split.get("train") or [r for r in ids if r not in held_out]),
                  "val": list(split.get("val", [])), "test": list(split.get("test", []))}
    out_dir.mkdir(parents=True, exist_ok=True)
    npz, js = pack_path(out_dir)
    stacked = np.stack(cubes)
    encoded = PACK_CODEC.encode(stacked)
    with atomic_write(npz) as f:
        np.savez(f, cubes_blosc=np.frombuffer(encoded, np.uint8), **{k: np.asarray(v) for k, v in (coords or {}).items()})
    doc = {"format": PACK_FORMAT, "format_version": 1, "dtype": "float16", "codec": "blosc zstd level 9 byte-shuffle (numcodecs)",
           "shape": list(stacked.shape), "variables": [v.name for v in VARIABLES], "runs": meta, "split": full_split}
    with atomic_write(js, "w") as f:
        f.write(json.dumps(doc, indent=1, default=str))
    return npz, js
