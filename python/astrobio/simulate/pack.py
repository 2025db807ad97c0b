"""The default dataset's climate pack, regenerated from finished simulations: every settled run's
result (`astrobio.simulate.output`) collected into one float16 pack in the format
`astrobio.datasets.climate` builds the climate store from (`astrobio datasets pack-climate`).

What is kept: the last `KEEP_MONTHS` monthly means of each run (the months before are spin-up).
What is left out, and recorded in the pack's ``excluded`` with the reason: runs that crashed
(``failed.json``) and runs whose drift exceeds the campaign's settling criterion.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fsutil import atomic_write
from ..datasets.climate import PACK_CODEC, PACK_FORMAT, PACK_FORMAT_VERSION, VARIABLES, pack_path
from ..errors import ConfigError, DataNotFoundError, IntegrityError
from .campaign import KEEP_MONTHS, SETTLED_DRIFT_K, held_out_split, settle_drift, untouched_specs
from .output import SimulationResult, global_mean, load_result

__all__ = ["pack_results", "run_drift"]


def run_drift(result: SimulationResult) -> float:
    """The run's drift, K per 60 days (`astrobio.simulate.campaign.settle_drift` of its monthly
    global-mean surface temperature)."""
    campaign = result.provenance.get("campaign") or {}
    if "drift_K_per_60d" in campaign:
        return float(campaign["drift_K_per_60d"])
    monthly = result.provenance.get("monthly_global_mean_ts_K")
    if monthly is None:
        if "ts" not in result.surface:
            raise IntegrityError("result has neither a recorded drift nor surface temperatures")
        monthly = global_mean(result.surface["ts"], np.asarray(result.coords["lat"]))
    return settle_drift(monthly)


def pack_results(results_dir: Path, out_dir: Path, split: Mapping[str, Sequence[str]] | None = None, *,
                 keep_months: int = KEEP_MONTHS, max_drift_k: float = SETTLED_DRIFT_K,
                 untouched: bool = False) -> tuple[Path, Path]:
    """Collect the settled runs under `results_dir` (``<run>/result.npz|json``) into one float16
    pack in `out_dir`. `split` names runs per split; without it the campaign's documented rule
    (`astrobio.simulate.campaign.held_out_split`) chooses the held-out planets.

    `untouched`: the untouched evaluation campaign's pack: every settled run in ``test`` (no
    train, no val) and the pack marked ``untouched`` (its store's provenance says so, and the
    trainer refuses it). Runs of that campaign are refused in any other pack, and it is never
    written into the package's own (training) pack folder.

    float16 keeps ~3 significant digits (0.125 K at 250 K, 0.06 m/s at 100 m/s); the pack
    records this, and the store's statistics are computed from the float32 values decoded from it.
    """
    results_dir = Path(results_dir)
    _check_untouched(results_dir, out_dir, split, untouched)
    finished = sorted(p.parent for p in results_dir.glob("*/result.json"))
    excluded: dict[str, str] = {}
    for failed in sorted(results_dir.glob("*/failed.json")):
        attempts = json.loads(failed.read_text()).get("attempts") or [{}]
        excluded[failed.parent.name] = f"model crashed: {attempts[-1].get('error', 'unknown error')}"[:300]
    cubes, meta, coords, months = [], [], None, None
    for run_dir in finished:
        r = load_result(run_dir)
        drift = run_drift(r)
        if abs(drift) > max_drift_k:
            excluded[run_dir.name] = f"not settled: drift {drift:+.2f} K per 60 days, limit {max_drift_k:g}"
            continue
        if r.data.shape[0] < keep_months:
            raise IntegrityError(f"run has {r.data.shape[0]} monthly means, the pack keeps {keep_months}", run=run_dir.name)
        c = {k: np.asarray(v).tolist() for k, v in r.coords.items() if k != "month"}
        if coords is None:
            coords, months = c, np.asarray(r.coords["month"][-keep_months:], dtype=np.int64)
        elif c != coords:
            raise IntegrityError("grid differs from the other runs", run=run_dir.name)
        cubes.append(r.data[-keep_months:].astype(np.float16))
        meta.append({"id": run_dir.name, "spec": r.provenance.get("planet", {}), "provenance": r.provenance,
                     "units": r.units, "drift_K_per_60d": drift})
    if not meta:
        raise DataNotFoundError("no finished, settled simulation results", path=str(results_dir),
                                hint="Run `astrobio simulate --campaign --out DIR` first")
    ids = [m["id"] for m in meta]
    if untouched:
        full_split = {"train": [], "val": [], "test": ids}
    elif split is None:
        full_split = held_out_split({m["id"]: m["spec"] for m in meta})
    else:
        for name, members in split.items():
            missing = set(members) - set(ids)
            if missing:
                raise IntegrityError(f"split {name!r} names runs without settled results: {sorted(missing)}")
        held_out = {r for name, members in split.items() if name != "train" for r in members}
        full_split = {"train": list(split.get("train") or [r for r in ids if r not in held_out]),
                      "val": list(split.get("val", [])), "test": list(split.get("test", []))}
    out_dir.mkdir(parents=True, exist_ok=True)
    npz, js = pack_path(out_dir)
    stacked = np.stack(cubes)
    encoded = PACK_CODEC.encode(stacked)
    assert months is not None and coords is not None
    with atomic_write(npz) as f:
        np.savez(f, cubes_blosc=np.frombuffer(encoded, np.uint8), month=months, **{k: np.asarray(v) for k, v in coords.items()})
    doc: dict[str, Any] = {
        "format": PACK_FORMAT, "format_version": PACK_FORMAT_VERSION, "dtype": "float16",
        "codec": "blosc zstd level 9 byte-shuffle (numcodecs)", "shape": list(stacked.shape),
        "variables": [v.name for v in VARIABLES], "months_kept": months.tolist(),
        "settling": {"max_abs_drift_K_per_60d": max_drift_k, "drift": "global-mean surface temperature, "
                     "mean of the last two months minus the two before"},
        "excluded": excluded, "runs": meta, "split": full_split,
    }
    if untouched:
        doc["untouched"] = True
    with atomic_write(js, "w") as f:
        f.write(json.dumps(doc, indent=1, default=str))
    return npz, js


def _check_untouched(results_dir: Path, out_dir: Path, split: Mapping[str, Sequence[str]] | None, untouched: bool) -> None:
    """The untouched campaign's runs go into their own pack, all of them in test, never the package's."""
    names = {s.slug for s in untouched_specs()}
    theirs = sorted(p.parent.name for p in results_dir.glob("*/result.json") if p.parent.name in names)
    if untouched:
        if split is not None:
            raise ConfigError("--untouched puts every settled run in test; drop --split")
        shipped = Path(pack_path()[0]).parent.resolve()
        if Path(out_dir).resolve() == shipped:
            raise ConfigError(f"the untouched runs are never packed into the package's training pack ({shipped}); "
                              "name the store: --untouched --store PATH")
    elif theirs:
        raise ConfigError(f"{results_dir} holds runs of the untouched evaluation campaign ({', '.join(theirs[:3])}"
                          f"{', ...' if len(theirs) > 3 else ''}); pack them with --untouched --store PATH, never for training")
