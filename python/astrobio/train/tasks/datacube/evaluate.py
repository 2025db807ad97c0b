"""Held-out evaluation of a trained emulator beside the climatology baseline.

Metrics (grid-point RMSE over samples, levels, lat and lon; not area-weighted):
  rmse                 over all variables, in normalized units (each variable weighs equally)
  rmse_by_var          per variable, normalized units
  rmse_physical        per variable, physical units (errors re-scaled with the store's statistics)
  skill                1 - rmse_model / rmse_climatology (> 0: the model beats the baseline)
and, when the physics terms apply, their values for the truth, the model and the baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ....reader import CubeReader
from .data import Normalization

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(model: nn.Module, store_path: Any, indices: np.ndarray, *, normalize: str, norm: Normalization,
             climatology: np.ndarray, variables: list[str], batch_size: int = 16, device: str | torch.device = "cpu",
             physics: Any = None, keep: list[int] | None = None,
             param_index: list[int] | None = None) -> dict[str, Any]:
    """Metrics of `model` and of the climatology on `indices`. `keep`: positions in `indices`
    whose (truth, model, climatology) cubes in physical units are returned under "fields".
    `param_index`: the parameter columns the model takes (None: all)."""
    model.eval()
    reader = CubeReader(store_path, normalize=normalize)
    v = climatology.shape[0]
    sse = {"model": np.zeros(v), "climatology": np.zeros(v)}
    sse_phys = {"model": np.zeros(v), "climatology": np.zeros(v)}
    phys_sums: dict[str, dict[str, float]] = {}
    n_points = 0
    clim_t = torch.as_tensor(climatology, dtype=torch.float32, device=device)
    scale = norm.scale[:, :, None, None]
    fields: dict[str, list[np.ndarray]] = {"truth": [], "model": [], "climatology": []}
    keep_set = set(keep or [])
    for start in range(0, len(indices), batch_size):
        batch = reader.read(indices[start : start + batch_size])
        target = torch.from_numpy(batch.cubes).to(device)
        params = batch.params if param_index is None else batch.params[:, param_index]
        pred = model(torch.from_numpy(np.ascontiguousarray(params)).to(device)).float()
        clim = clim_t.expand_as(target)
        for name, guess in (("model", pred), ("climatology", clim)):
            err = (guess - target).double().cpu().numpy()
            sse[name] += (err ** 2).sum(axis=(0, 2, 3, 4))
            sse_phys[name] += ((err * scale) ** 2).sum(axis=(0, 2, 3, 4))
        n_points += target[:, 0].numel()
        if physics is not None:
            for name, x in (("truth", target), ("model", pred), ("climatology", clim)):
                for term, value in physics.terms(x).items():
                    bucket = phys_sums.setdefault(name, {})
                    bucket[term] = bucket.get(term, 0.0) + float(value) * target.shape[0]
        for j in range(target.shape[0]):
            if start + j in keep_set:
                fields["truth"].append(norm.to_physical(batch.cubes[j].astype(np.float64)))
                fields["model"].append(norm.to_physical(pred[j].double().cpu().numpy()))
                fields["climatology"].append(norm.to_physical(climatology))
    out: dict[str, Any] = {"n_samples": int(len(indices))}
    for name in ("model", "climatology"):
        mse = sse[name] / max(1, n_points)
        out[name] = {
            "rmse": float(np.sqrt(mse.mean())),
            "rmse_by_var": {k: float(x) for k, x in zip(variables, np.sqrt(mse))},
            "rmse_physical": {k: float(x) for k, x in zip(variables, np.sqrt(sse_phys[name] / max(1, n_points)))},
        }
    out["skill"] = 1.0 - out["model"]["rmse"] / out["climatology"]["rmse"] if out["climatology"]["rmse"] > 0 else float("nan")
    if phys_sums:
        out["physics"] = {name: {k: s / len(indices) for k, s in terms.items()} for name, terms in phys_sums.items()}
    out["fields"] = fields
    out["field_samples"] = [int(indices[i]) for i in sorted(keep_set) if i < len(indices)]
    return out
