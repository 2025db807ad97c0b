"""The physical limit of the emulator's score: the GCM's own month-to-month variability.

The emulator predicts one settled climate per planet, and each held-out sample is one monthly
mean of that planet's run, which scatters about the planet's multi-month mean by the model's
internal variability. That scatter is the noise floor: per variable, the RMSE of each monthly
mean about its planet's mean over the held-out months (grid-point, physical units; also overall
in normalized units, comparable to the overall RMSE). A model that predicted every planet's
mean climate exactly would score about this RMSE, so the model's RMSE as a multiple of it says
how far from the limit it is (1.0 is the limit; a few months per planet underestimate the floor
slightly, by the factor sqrt((n - 1) / n) of a sample variance).

`NoiseFloor` accumulates over batches of normalized truth cubes (`evaluate` of the datacube
task feeds it); numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..stores.cube import open_store

__all__ = ["NoiseFloor", "noise_rows"]


class NoiseFloor:
    """Per-run sums of the truth cubes (normalized) of the samples `indices` of `store_path`;
    `result` gives the month-to-month RMSE about each run's mean. `scale` [V, L] converts
    normalized to physical deviations (the normalization's scale)."""

    def __init__(self, store_path: Any, indices: np.ndarray, scale: np.ndarray, variables: Sequence[str]) -> None:
        store = open_store(store_path)
        indices = np.asarray(indices, np.int64)
        self.run_of = dict(zip(indices.tolist(), store.run_positions(indices).tolist())) if len(indices) else {}
        self.scale = np.asarray(scale, np.float64)
        self.variables = list(variables)
        self.sums: dict[int, list[Any]] = {}  # run -> [count, sum [V,L,H,W], sum of squares [V,L,H,W]]

    def add(self, indices: np.ndarray, cubes: np.ndarray) -> None:
        """A batch: sample `indices` [B] and their normalized truth `cubes` [B, V, L, H, W]."""
        for i, cube in zip(np.asarray(indices).tolist(), np.asarray(cubes)):
            x = cube.astype(np.float64)
            acc = self.sums.setdefault(self.run_of[int(i)], [0, np.zeros_like(x), np.zeros_like(x)])
            acc[0] += 1
            acc[1] += x
            acc[2] += x * x

    def result(self, model_rmse_physical: dict[str, float] | None = None, model_rmse: float | None = None) -> dict[str, Any] | None:
        """{"rmse_physical": {var: floor}, "rmse": floor [normalized], "runs", "samples", and the
        model's RMSE as a multiple of the floor ("model_multiple": {var: x}, "model_multiple_all")};
        None when no run has two held-out months."""
        sq_norm, sq_phys, n_points = 0.0, 0.0, 0
        runs = samples = 0
        for count, total, squares in self.sums.values():
            if count < 2:
                continue
            dev2 = np.clip(squares - total * total / count, 0.0, None)  # sum over months of (x - run mean)^2
            sq_norm = sq_norm + dev2.sum(axis=(1, 2, 3))
            sq_phys = sq_phys + (dev2 * (self.scale ** 2)[:, :, None, None]).sum(axis=(1, 2, 3))
            n_points += count * int(np.prod(total.shape[1:]))
            runs, samples = runs + 1, samples + count
        if not runs:
            return None
        mse_norm = np.asarray(sq_norm) / n_points
        floor = {v: float(x) for v, x in zip(self.variables, np.sqrt(np.asarray(sq_phys) / n_points))}
        out: dict[str, Any] = {"rmse_physical": floor, "rmse": float(np.sqrt(mse_norm.mean())), "runs": runs, "samples": samples,
                               "definition": "RMSE of each monthly mean about its planet's mean over the held-out months"}
        if model_rmse_physical:
            out["model_multiple"] = {v: model_rmse_physical[v] / f if f > 0 else float("inf") for v, f in floor.items()}
        if model_rmse is not None:
            out["model_multiple_all"] = model_rmse / out["rmse"] if out["rmse"] > 0 else float("inf")
        return out


def noise_rows(res: dict[str, Any], units: dict[str, str], n_baselines: int, fmt: Any) -> list[tuple[str, ...]]:
    """Table rows for one split's noise floor (and calibration, when the split has one) in the
    datacube summary table's columns: split, metric, model, baselines..., skills...."""
    rows: list[tuple[str, ...]] = []
    floor = res.get("noise_floor")
    pad = [""] * (2 * n_baselines)
    if floor:
        rows.append(("", f"GCM noise floor (month to month, {floor['runs']} planets)", "", *pad[:-1], "model RMSE / floor"))
        rows.append(("", "  all [normalized]", fmt(floor["rmse"]), *pad[:-1], f"model {floor.get('model_multiple_all', float('nan')):.1f}x"))
        for name, unit in units.items():
            if name in floor["rmse_physical"]:
                rows.append(("", f"  {name} [{unit}]", fmt(floor["rmse_physical"][name]), *pad[:-1],
                             f"model {floor.get('model_multiple', {}).get(name, float('nan')):.1f}x"))
    calib = res.get("calibration")
    if calib:
        rows.append(("", f"ensemble calibration ({calib['members']} members)", "spread/skill", "CRPS",
                     *(["CRPS / MAE"] if n_baselines else []), *pad[: max(0, 2 * n_baselines - 2)]))
        for name, unit in units.items():
            c = calib["variables"].get(name)
            if c:
                rows.append(("", f"  {name} [{unit}] ({c['verdict']})", f"{c['spread_skill']:.2f}", fmt(c["crps"]),
                             *([f"{c['crps'] / c['mae_of_mean']:.2f}" if c["mae_of_mean"] > 0 else "n/a"] if n_baselines else []),
                             *pad[: max(0, 2 * n_baselines - 2)]))
    return rows
