"""Physical scalings of a planet's climate, shared by the climate dataset (derived parameters)
and the emulator's physics baseline (`astrobio.models.baseline`). numpy only.

- Equilibrium temperature, full redistribution: ``T_eq = (S (1 - A) / (4 sigma_SB))^(1/4)`` with
  S = instellation x 1367 W m-2 and a Bond albedo A = `BOND_ALBEDO` (assumed for every planet; the
  GCM's own albedo emerges from its clouds and ice, which is what the emulator learns).
- Water vapour follows Clausius-Clapeyron: a saturated column's specific humidity scales like
  ``exp(L_v / R_v (1/T_ref - 1/T))``; at the equilibrium temperature this is the humidity scale.
- Vertical pressure velocity omega (Pa s-1) on sigma levels scales with the surface pressure.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SOLAR_CONSTANT_WM2", "BOND_ALBEDO", "STEFAN_BOLTZMANN", "T_REF_K", "equilibrium_temperature",
           "clausius_clapeyron_factor", "field_scale"]

SOLAR_CONSTANT_WM2 = 1367.0
BOND_ALBEDO = 0.3
STEFAN_BOLTZMANN = 5.670374419e-8
#: Latent heat of vaporization (J kg-1) and the gas constant of water vapour (J kg-1 K-1).
L_VAPOR = 2.501e6
R_VAPOR = 461.5
#: Reference temperature of the humidity scaling (an Earth-like T_eq), K.
T_REF_K = 255.0


def equilibrium_temperature(instellation_earth: np.ndarray | float, albedo: float = BOND_ALBEDO) -> np.ndarray:
    """T_eq in K for instellation in units of Earth's (full heat redistribution)."""
    s = np.asarray(instellation_earth, dtype=np.float64) * SOLAR_CONSTANT_WM2
    return (np.clip(s, 0.0, None) * (1.0 - albedo) / (4.0 * STEFAN_BOLTZMANN)) ** 0.25


def clausius_clapeyron_factor(t_k: np.ndarray | float, t_ref: float = T_REF_K) -> np.ndarray:
    """Saturation vapour ratio e_s(T) / e_s(T_ref) (Clausius-Clapeyron, constant L_v)."""
    t = np.asarray(t_k, dtype=np.float64)
    return np.exp(L_VAPOR / R_VAPOR * (1.0 / t_ref - 1.0 / t))


def field_scale(variable: str, t_eq_k: np.ndarray, surface_pressure_bar: np.ndarray) -> np.ndarray:
    """The physical scale of `variable` for planets with the given T_eq and surface pressure:
    ta ~ T_eq, hus ~ Clausius-Clapeyron at T_eq, wap ~ surface pressure, others 1 (shape of t_eq)."""
    t_eq = np.asarray(t_eq_k, dtype=np.float64)
    if variable == "ta":
        return t_eq
    if variable == "hus":
        return clausius_clapeyron_factor(t_eq)
    if variable == "wap":
        return np.broadcast_to(np.asarray(surface_pressure_bar, dtype=np.float64), t_eq.shape).copy()
    return np.ones_like(t_eq)
