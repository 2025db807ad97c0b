"""Held-out evaluation of a trained emulator beside its baselines: the climatology (the train
mean) and, where the task has one, the physics baseline (`astrobio.models.PhysicsBaseline`).

Metrics (grid-point RMSE over samples, levels, lat and lon; not area-weighted):
  rmse                 over all variables, in normalized units (each variable weighs equally)
  rmse_by_var          per variable, normalized units
  rmse_physical        per variable, physical units (errors re-scaled with the store's statistics)
  skill                1 - rmse_model / rmse_climatology (> 0: the model beats the baseline)
  skill_physics_baseline   1 - rmse_model / rmse_physics_baseline
and, when the physics terms apply, their values for the truth, the model and the baseline;
noise_floor          the GCM's month-to-month variability on these samples and the model's RMSE
                     as a multiple of it (`astrobio.emulator.noise`); with `members` (an
                     ensemble), calibration: spread-skill, CRPS, reliability (`astrobio.emulator.calibration`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ....emulator.calibration import Calibration
from ....emulator.noise import NoiseFloor
from ....reader import CubeReader
from .data import Normalization

__all__ = ["evaluate", "BASELINES", "baseline_label"]

#: The baselines every table shows, by their key in the summary's ``evaluation.<split>``.
BASELINES = ("climatology", "physics_baseline")


def baseline_label(name: str) -> str:
    """A baseline's short name in table headers ("clim.", "physics")."""
    return "clim." if name == "climatology" else "physics"


@torch.no_grad()
def evaluate(predict: Callable[[torch.Tensor], torch.Tensor], store_path: Any, indices: np.ndarray, *, normalize: str,
             norm: Normalization, climatology: np.ndarray, variables: list[str], batch_size: int = 16,
             device: str | torch.device = "cpu", physics: Any = None, keep: list[int] | None = None,
             baseline: nn.Module | None = None, members: Callable[[torch.Tensor], torch.Tensor] | None = None,
             reader: Any = None) -> dict[str, Any]:
    """Metrics of `predict` (full normalized parameter rows [B, P] -> normalized cubes), of the
    climatology and of the physics `baseline` (when given) on `indices`. `keep`: positions in
    `indices` whose (truth, model, climatology) cubes in physical units are returned under "fields".
    `members` (an ensemble's every prediction, [M, B, ...]) adds the calibration; `reader` reads
    the batches (default: the store's own normalization, `CubeReader`)."""
    reader = reader if reader is not None else CubeReader(store_path, normalize=normalize)
    noise = NoiseFloor(store_path, indices, norm.scale, variables)
    calibration = Calibration(norm.scale, variables) if members is not None else None
    v = climatology.shape[0]
    names = ["model", "climatology"] + (["physics_baseline"] if baseline is not None else [])
    sse = {k: np.zeros(v) for k in names}
    sse_phys = {k: np.zeros(v) for k in names}
    phys_sums: dict[str, dict[str, float]] = {}
    n_points = 0
    clim_t = torch.as_tensor(climatology, dtype=torch.float32, device=device)
    scale = norm.scale[:, :, None, None]
    fields: dict[str, list[np.ndarray]] = {"truth": [], "model": [], "climatology": []}
    keep_set = set(keep or [])
    for start in range(0, len(indices), batch_size):
        batch = reader.read(indices[start : start + batch_size])
        target = torch.from_numpy(batch.cubes).to(device)
        params = torch.from_numpy(np.ascontiguousarray(batch.params)).to(device)
        guesses = {"model": predict(params).float(), "climatology": clim_t.expand_as(target)}
        if baseline is not None:
            guesses["physics_baseline"] = baseline(params).float()
        for name, guess in guesses.items():
            err = (guess - target).double().cpu().numpy()
            sse[name] += (err ** 2).sum(axis=(0, 2, 3, 4))
            sse_phys[name] += ((err * scale) ** 2).sum(axis=(0, 2, 3, 4))
        n_points += target[:, 0].numel()
        noise.add(batch.indices, batch.cubes)
        if calibration is not None:
            calibration.add(members(params).float(), target)
        if physics is not None:
            for name, x in (("truth", target), ("model", guesses["model"]), ("climatology", guesses["climatology"])):
                for term, value in physics.terms(x).items():
                    bucket = phys_sums.setdefault(name, {})
                    bucket[term] = bucket.get(term, 0.0) + float(value) * target.shape[0]
        for j in range(target.shape[0]):
            if start + j in keep_set:
                fields["truth"].append(norm.to_physical(batch.cubes[j].astype(np.float64)))
                fields["model"].append(norm.to_physical(guesses["model"][j].double().cpu().numpy()))
                fields["climatology"].append(norm.to_physical(climatology))
    out: dict[str, Any] = {"n_samples": int(len(indices))}
    for name in names:
        mse = sse[name] / max(1, n_points)
        out[name] = {
            "rmse": float(np.sqrt(mse.mean())),
            "rmse_by_var": {k: float(x) for k, x in zip(variables, np.sqrt(mse))},
            "rmse_physical": {k: float(x) for k, x in zip(variables, np.sqrt(sse_phys[name] / max(1, n_points)))},
        }
    out["skill"] = _skill(out["model"]["rmse"], out["climatology"]["rmse"])
    if baseline is not None:
        out["skill_physics_baseline"] = _skill(out["model"]["rmse"], out["physics_baseline"]["rmse"])
    out["noise_floor"] = noise.result(out["model"]["rmse_physical"], out["model"]["rmse"])
    if calibration is not None:
        out["calibration"] = calibration.result()
    if phys_sums:
        out["physics"] = {name: {k: s / len(indices) for k, s in terms.items()} for name, terms in phys_sums.items()}
    out["fields"] = fields
    out["field_samples"] = [int(indices[i]) for i in sorted(keep_set) if i < len(indices)]
    return out


def _skill(model_rmse: float, baseline_rmse: float) -> float:
    return 1.0 - model_rmse / baseline_rmse if baseline_rmse > 0 else float("nan")
