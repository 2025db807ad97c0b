"""The physics baseline of the climate emulator: the training planets' climatology of each rotation
regime, rescaled to a planet by what physics says sets its scale.

For variable v with physical scale s_v(planet) (`astrobio.climate_scaling.field_scale`: T_eq for
ta, Clausius-Clapeyron at T_eq for hus, surface pressure for wap, 1 for the winds):

    baseline_v(planet) = Ybar_v[regime(planet)] * s_v(planet) ** b_v
    Ybar_v[g]          = mean over training samples of regime g of  x_v / s_v ** b_v

The exponent b_v is fitted on the training planets (least squares of log rms(x_v) on log s_v with
one intercept per regime) and clipped to [0, 1]: between no rescaling (the regime climatology)
and the full physical scaling. So a scaling that holds only in part (the T_eq of a tidally
locked planet is not its surface temperature) is not over-applied, and a fit on a few planets
cannot extrapolate beyond the physics. Regimes are synchronous and fast
rotation; a regime without training samples falls back to the pooled mean.

It is a model without trainable parameters (buffers only, saved with the checkpoint): the
emulator predicts its departures from it, and the evaluation reports it as the second baseline
beside the climatology. Departures are absolute (normalized units) for every variable except
those in `RELATIVE_VARIABLES` (specific humidity), whose departures are fractions of the
baseline field: humidity varies over orders of magnitude between planets and its errors are
multiplicative, so a correction sized for a warm planet must not swamp a cold one
(`departure_scale`). Imports torch and numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..climate_scaling import equilibrium_temperature, field_scale

__all__ = ["PhysicsBaseline", "fit_physics_baseline", "RELATIVE_VARIABLES"]

#: Variables whose departures from the baseline are predicted as fractions of it.
RELATIVE_VARIABLES = ("hus",)


class PhysicsBaseline(nn.Module):
    """Normalized parameters [B, P] -> the baseline cube [B, V, L, H, W] in normalized units.

    Args:
        variables: the cube's variable names (their order).
        param_names: the store's parameter names (their order).
        regime_mean: [2, V, L, H, W] Ybar per regime (index 0: fast, 1: synchronous), physical
            units divided by the scale.
        exponent: [V] fitted b_v.
        cube_mean, cube_scale: [V, L] the store's cube normalization (physical = x * scale + mean).
        param_mean, param_scale: [P] the store's parameter normalization.
    """

    regime_mean: torch.Tensor
    exponent: torch.Tensor
    cube_mean: torch.Tensor
    cube_scale: torch.Tensor
    param_mean: torch.Tensor
    param_scale: torch.Tensor

    def __init__(self, variables: Sequence[str], param_names: Sequence[str], regime_mean: np.ndarray,
                 exponent: np.ndarray, cube_mean: np.ndarray, cube_scale: np.ndarray, param_mean: np.ndarray,
                 param_scale: np.ndarray) -> None:
        super().__init__()
        self.variables = list(variables)
        self.param_names = list(param_names)
        for name, value in (("regime_mean", regime_mean), ("exponent", exponent), ("cube_mean", cube_mean),
                            ("cube_scale", cube_scale), ("param_mean", param_mean), ("param_scale", param_scale)):
            self.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=torch.float64))

    def planet_terms(self, params: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(T_eq [B], surface pressure [B], synchronous [B] as 0/1) of normalized `params`."""
        raw = params.detach().double().cpu().numpy() * self.param_scale.cpu().numpy() + self.param_mean.cpu().numpy()
        return _planet_terms(raw, self.param_names)

    def physical(self, params: torch.Tensor) -> torch.Tensor:
        """The baseline cube [B, V, L, H, W] in physical units (float64)."""
        t_eq, ps, sync = self.planet_terms(params)
        scale = torch.as_tensor(_scales(self.variables, t_eq, ps, self.exponent.cpu().numpy()), device=self.regime_mean.device)
        regime = torch.as_tensor(sync.astype(np.int64), device=self.regime_mean.device)
        return self.regime_mean[regime] * scale[:, :, None, None, None]

    def terms(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(baseline, departure scale), both [B, V, L, H, W] in normalized units: the emulated
        cube is ``baseline + departure_scale * network output``. The departure scale is 1, or
        for `RELATIVE_VARIABLES` the baseline's magnitude (a network output of 0.1 is then 10%
        of the baseline field)."""
        physical = self.physical(params)
        std = self.cube_scale[None, :, :, None, None]
        normalized = (physical - self.cube_mean[None, :, :, None, None]) / std
        departure = torch.ones_like(physical)
        for i, v in enumerate(self.variables):
            if v in RELATIVE_VARIABLES:
                departure[:, i] = physical[:, i].abs() / std[:, i]
        dtype = params.dtype if params.is_floating_point() else torch.float32
        return normalized.to(dtype), departure.to(dtype)

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        return self.terms(params)[0]


def _scales(variables: Sequence[str], t_eq: np.ndarray, ps: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """[B, V] s_v(planet) ** b_v."""
    return np.stack([field_scale(v, t_eq, ps) ** exponent[i] for i, v in enumerate(variables)], axis=1)


def _planet_terms(raw: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T_eq, surface pressure and the regime from raw parameter rows [B, P] (by column name;
    missing columns: T_eq from instellation if present, else 255 K; 1 bar; fast)."""
    col = {n: i for i, n in enumerate(names)}
    n = raw.shape[0]
    if "equilibrium_temperature" in col:
        t_eq = raw[:, col["equilibrium_temperature"]]
    elif "instellation" in col:
        t_eq = equilibrium_temperature(raw[:, col["instellation"]])
    else:
        t_eq = np.full(n, 255.0)
    ps = raw[:, col["surface_pressure"]] if "surface_pressure" in col else np.ones(n)
    sync = (raw[:, col["synchronous"]] > 0.5).astype(np.float64) if "synchronous" in col else np.zeros(n)
    return np.clip(t_eq, 1.0, None), np.clip(ps, 1e-6, None), sync


def fit_physics_baseline(cubes: np.ndarray, raw_params: np.ndarray, variables: Sequence[str], param_names: Sequence[str],
                         cube_mean: np.ndarray, cube_scale: np.ndarray, param_mean: np.ndarray,
                         param_scale: np.ndarray) -> PhysicsBaseline:
    """Fit the baseline on training samples: `cubes` [N, V, L, H, W] in physical units and their
    `raw_params` [N, P] in physical units; the normalizations are the store's."""
    t_eq, ps, sync = _planet_terms(raw_params, param_names)
    regime = sync.astype(np.int64)
    n_var = cubes.shape[1]
    exponent = np.zeros(n_var)
    for i, v in enumerate(variables):
        s = field_scale(v, t_eq, ps)
        if np.allclose(s, s[0]):
            continue  # no scale (winds) or no spread to fit on: the regime climatology
        rms = np.sqrt((cubes[:, i].astype(np.float64) ** 2).mean(axis=(1, 2, 3)))
        exponent[i] = float(np.clip(_fit_exponent(np.log(rms + 1e-30), np.log(s), regime), 0.0, 1.0))
    regime_mean = np.zeros((2, *cubes.shape[1:]))
    scaled = cubes.astype(np.float64) / _scales(variables, t_eq, ps, exponent)[:, :, None, None, None]
    pooled = scaled.mean(axis=0)
    for g in (0, 1):
        members = regime == g
        regime_mean[g] = scaled[members].mean(axis=0) if members.any() else pooled
    return PhysicsBaseline(variables, param_names, regime_mean, exponent, cube_mean, cube_scale, param_mean, param_scale)


def _fit_exponent(log_rms: np.ndarray, log_scale: np.ndarray, regime: np.ndarray) -> float:
    """Slope of log_rms on log_scale with one intercept per regime present (least squares)."""
    groups = sorted(set(regime.tolist()))
    design = np.column_stack([log_scale] + [(regime == g).astype(np.float64) for g in groups])
    coef, *_ = np.linalg.lstsq(design, log_rms, rcond=None)
    return float(coef[0])
