"""The linear stage of the climate emulator: departures from the physics baseline as a ridge
regression on the planet parameters, one weight per parameter and grid cell ("pattern scaling").

With a few tens of training planets a linear map is what the data can pin down: it is fitted in
closed form, and its penalty is chosen per variable by leave-one-planet-out cross-validation on
the training planets only (the error is measured on the cube, so a variable whose departures do
not follow the parameters gets a large penalty and stays at its mean). The network then learns
what is left, and early stopping on the validation planets decides how much of that to keep.

It has no trainable parameters (buffers only, saved with the checkpoint). Imports torch and numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["LinearDeparture", "fit_linear_departure", "RIDGE_GRID"]

#: Penalties tried per variable (inputs are the store's normalized parameters, ~unit scale).
RIDGE_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)


class LinearDeparture(nn.Module):
    """Inputs [B, F] -> departures [B, V, L, H, W]: ``intercept + (x - input_mean) @ weight``.

    Args:
        input_mean: [F] the training inputs' mean.
        intercept: [V, L, H, W] the training departures' mean.
        weight: [F, V, L, H, W] ridge coefficients.
        penalty: [V] the ridge penalty chosen for each variable (recorded, not used).
    """

    input_mean: torch.Tensor
    intercept: torch.Tensor
    weight: torch.Tensor
    penalty: torch.Tensor

    def __init__(self, input_mean: np.ndarray, intercept: np.ndarray, weight: np.ndarray, penalty: np.ndarray) -> None:
        super().__init__()
        for name, value in (("input_mean", input_mean), ("intercept", intercept), ("weight", weight),
                            ("penalty", penalty)):
            self.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.input_mean.shape[0]:
            raise ValueError(f"inputs must be [B, {self.input_mean.shape[0]}], got {tuple(x.shape)}")
        flat = (x.float() - self.input_mean) @ self.weight.reshape(self.weight.shape[0], -1)
        return self.intercept + flat.reshape(x.shape[0], *self.intercept.shape).to(x.dtype if x.is_floating_point() else torch.float32)


def _solve(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge of y [N, G] on x [N, F] with an unpenalized intercept: (x_mean, y_mean, W [F, G])."""
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + penalty * np.eye(x.shape[1]), xc.T @ (y - ym))
    return xm, ym, w


def _lopo_errors(x: np.ndarray, flat: np.ndarray, d: np.ndarray, s: np.ndarray, groups: np.ndarray,
                 grid: Sequence[float]) -> np.ndarray:
    """Leave-one-group-out squared cube error per (penalty, variable): [len(grid), V].

    Each fold's centered cross-products come from the full sums less the held group's (so no
    fold copies the [N, G] departures), and each penalty only solves an [F, F] system."""
    n = x.shape[0]
    sum_x, sum_y = x.sum(axis=0), flat.sum(axis=0)
    xx, xy = x.T @ x, x.T @ flat
    eye = np.eye(x.shape[1])
    cv = np.zeros((len(grid), d.shape[1]))
    for g in np.unique(groups):
        held = groups == g
        x_h, y_h = x[held], flat[held]
        m = n - len(x_h)
        xm, ym = (sum_x - x_h.sum(axis=0)) / m, (sum_y - y_h.sum(axis=0)) / m
        cxx = xx - x_h.T @ x_h - m * np.outer(xm, xm)
        cxy = xy - x_h.T @ y_h - m * np.outer(xm, ym)
        d_h, s_h = d[held], s[held]
        for k, penalty in enumerate(grid):
            pred = ym + np.linalg.solve(cxx + penalty * eye, (x_h - xm).T).T @ cxy
            cv[k] += ((s_h * (pred.reshape(d_h.shape) - d_h)) ** 2).sum(axis=(0, 2, 3, 4))
    return cv


def fit_linear_departure(inputs: np.ndarray, departures: np.ndarray, groups: Sequence[int] | np.ndarray,
                         scale: np.ndarray | None = None, grid: Sequence[float] = RIDGE_GRID) -> LinearDeparture:
    """Fit on training samples: `inputs` [N, F], `departures` [N, V, L, H, W] (the network's
    target units), `groups` [N] the planet of each sample. `scale` [N, V, L, H, W] converts a
    departure error to a cube error (`PhysicsBaseline.terms`; default 1). Each variable's penalty
    is the one of `grid` with the least leave-one-group-out squared cube error (with one group:
    the largest, i.e. the mean)."""
    x = np.asarray(inputs, np.float64)
    d = np.asarray(departures, np.float64)
    groups = np.asarray(groups)
    if x.ndim != 2 or d.ndim != 5 or x.shape[0] != d.shape[0] or groups.shape != (x.shape[0],):
        raise ValueError(f"inputs [N, F], departures [N, V, L, H, W] and groups [N] must agree; got "
                         f"{x.shape}, {d.shape}, {groups.shape}")
    if not grid or min(grid) <= 0:
        raise ValueError("the penalty grid needs positive values")
    n, n_var = d.shape[0], d.shape[1]
    s = np.ones_like(d) if scale is None else np.asarray(scale, np.float64)
    flat = d.reshape(n, -1)
    if len(np.unique(groups)) > 1:
        cv = _lopo_errors(x, flat, d, s, groups, grid)
        chosen = np.array([float(grid[int(np.argmin(cv[:, v]))]) for v in range(n_var)])
    else:  # one planet: nothing to validate on; the largest penalty keeps each variable near its mean
        chosen = np.full(n_var, float(max(grid)))
    weight = np.zeros((x.shape[1], *d.shape[1:]))
    for penalty in np.unique(chosen):
        xm, ym, w = _solve(x, flat, float(penalty))
        members = chosen == penalty
        weight[:, members] = w.reshape(x.shape[1], *d.shape[1:])[:, members]
    xm, ym = x.mean(axis=0), flat.mean(axis=0)
    return LinearDeparture(xm, ym.reshape(d.shape[1:]), weight, chosen)
