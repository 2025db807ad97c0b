"""Is an ensemble's spread an honest uncertainty? Spread-skill ratio, CRPS and reliability of the
members' predictions on held-out planets, per variable, in physical units.

- spread-skill: ``sqrt((M + 1) / M) * spread / RMSE(mean)``, with spread the root of the mean
  unbiased member variance; 1 for a reliable M-member ensemble (Fortin et al. 2014, J. Hydromet.
  15:1708), below 1 when the spread is too narrow (overconfident), above when too wide.
- CRPS: the fair ensemble CRPS (Ferro 2014, QJRMS 140:1917),
  ``mean_i |x_i - y| - sum_{i,j} |x_i - x_j| / (2 M (M - 1))``, averaged over samples and grid
  points; beside it the MAE of the ensemble mean (the CRPS of a point forecast), so CRPS / MAE
  below 1 is what the spread adds.
- reliability: the fraction of truths inside the central Gaussian interval of each nominal
  probability (mean +/- z * sqrt((M + 1) / M) * member std); a calibrated ensemble lies on the
  diagonal, an overconfident one below it (`plot_reliability`).

`Calibration` accumulates over batches (the datacube task's `evaluate` feeds it); torch for the
member arithmetic, numpy for the results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Calibration", "NOMINAL", "plot_reliability", "verdict"]

#: Nominal probabilities of the central intervals in the reliability diagram.
NOMINAL = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def verdict(ratio: float) -> str:
    """How to read a spread-skill ratio (within 20% of 1 counts as calibrated)."""
    if not math.isfinite(ratio):
        return "undefined"
    return "spread too narrow" if ratio < 0.8 else "spread too wide" if ratio > 1.2 else "calibrated"


class Calibration:
    """Sums of the calibration statistics of M-member predictions against the truth."""

    def __init__(self, scale: np.ndarray, variables: Sequence[str]) -> None:
        self.scale = torch.as_tensor(np.asarray(scale, np.float64))  # [V, L]
        self.variables = list(variables)
        v = len(self.variables)
        self.members = 0
        self.var_sum = torch.zeros(v, dtype=torch.float64)
        self.sq_err = torch.zeros(v, dtype=torch.float64)
        self.abs_err = torch.zeros(v, dtype=torch.float64)
        self.crps = torch.zeros(v, dtype=torch.float64)
        self.inside = torch.zeros(len(NOMINAL), v, dtype=torch.float64)
        self.points = 0
        z = [math.sqrt(2.0) * float(torch.special.erfinv(torch.tensor(p, dtype=torch.float64))) for p in NOMINAL]
        self.z = torch.tensor(z, dtype=torch.float64)

    def add(self, members: torch.Tensor, target: torch.Tensor) -> None:
        """`members` [M, B, V, L, H, W] and `target` [B, V, L, H, W], normalized."""
        m = int(members.shape[0])
        if m < 2:
            return
        self.members = m
        s = self.scale.to(members.device)[None, :, :, None, None]
        x = members.double() * s  # physical up to the mean, which differences cancel
        y = target.double() * s
        mean = x.mean(dim=0)
        std = x.std(dim=0, unbiased=True)
        self.var_sum += (std ** 2).sum(dim=(0, 2, 3, 4)).cpu()
        err = mean - y
        self.sq_err += (err ** 2).sum(dim=(0, 2, 3, 4)).cpu()
        self.abs_err += err.abs().sum(dim=(0, 2, 3, 4)).cpu()
        skill = (x - y[None]).abs().mean(dim=0)
        pairs = torch.zeros_like(y)
        for i in range(m):
            for j in range(i + 1, m):
                pairs += (x[i] - x[j]).abs()
        self.crps += (skill - pairs / (m * (m - 1))).sum(dim=(0, 2, 3, 4)).cpu()  # 2 * sum_{i<j} / (2 M (M - 1))
        width = std * math.sqrt((m + 1) / m)
        for k, zk in enumerate(self.z.tolist()):
            self.inside[k] += (err.abs() <= zk * width).double().sum(dim=(0, 2, 3, 4)).cpu()
        self.points += int(y[:, 0].numel())

    def result(self) -> dict[str, Any] | None:
        """{"members", "nominal", "variables": {var: {spread, rmse, spread_skill, crps,
        mae_of_mean, coverage, verdict}}, "too_narrow": [vars]}; None without an ensemble."""
        if self.members < 2 or self.points == 0:
            return None
        n, m = self.points, self.members
        out: dict[str, Any] = {"members": m, "nominal": list(NOMINAL), "variables": {}}
        for i, v in enumerate(self.variables):
            spread = math.sqrt(float(self.var_sum[i]) / n)
            rmse = math.sqrt(float(self.sq_err[i]) / n)
            ratio = math.sqrt((m + 1) / m) * spread / rmse if rmse > 0 else float("nan")
            out["variables"][v] = {"spread": spread, "rmse": rmse, "spread_skill": ratio, "crps": float(self.crps[i]) / n,
                                   "mae_of_mean": float(self.abs_err[i]) / n,
                                   "coverage": [float(c) / n for c in self.inside[:, i]], "verdict": verdict(ratio)}
        out["too_narrow"] = [v for v, r in out["variables"].items() if r["verdict"] == "spread too narrow"]
        return out


def plot_reliability(calibration: dict[str, Any], path: Path, title: str = "") -> Path:
    """The reliability diagram: observed coverage of each central interval against its nominal
    probability, one line per variable, the diagonal for reference."""
    from ..train.report import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    nominal = calibration["nominal"]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    for v, r in calibration["variables"].items():
        ax.plot(nominal, r["coverage"], marker="o", label=f"{v} (spread/skill {r['spread_skill']:.2f})")
    ax.set_xlabel("nominal probability of the central interval")
    ax.set_ylabel("fraction of held-out truth inside it")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title or f"reliability of the {calibration['members']}-member ensemble")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
