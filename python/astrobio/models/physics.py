"""Physics-constraint loss terms for the datacube emulator (`--physics-constraints`).

The network predicts normalized fields x_hat; each term first returns to physical units with
the store's normalization statistics, x = x_hat * s + m (per variable, or per variable and
level), and is divided by the variable's squared scale s^2 so it is commensurate with the
normalized MSE it is added to. Imports only torch.

1. Non-negative specific humidity (hus, kg/kg). Water vapour mass cannot be negative:

       L_q = mean( max(0, -q)^2 ) / s_q^2

   over every grid point, level and sample. Zero for any physical field.

2. Dry static stability (ta, K, on sigma levels). In a climate mean state convection removes
   super-adiabatic lapse rates, so potential temperature does not decrease with height. With
   p = sigma * p_s, theta = T (p0 / p)^kappa = T sigma^(-kappa) (p0 / p_s)^kappa; the last
   factor is the same at every level of a column, so the sign of d(theta)/dz is that of
   d(theta_sigma)/dz with theta_sigma = T sigma^(-kappa). For adjacent levels k (lower, larger
   sigma) and k+1 (upper):

       L_theta = mean( max(0, theta_sigma[k] - theta_sigma[k+1])^2 ) / s_T^2

   kappa = R/c_p = 2/7 for a diatomic (N2/O2) atmosphere, ExoPlaSim's default gas. Zero for
   any column whose theta never decreases upward (an isothermal column, or T ~ sigma^kappa).

Both are soft penalties: GCM monthly means can violate (2) slightly in the surface layer; the
trainer reports each term for the truth beside the model so that is visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["KAPPA_DRY_AIR", "humidity_negativity", "static_instability", "PhysicsLoss"]

#: R / c_p for an ideal diatomic gas (N2, O2): 2/7.
KAPPA_DRY_AIR = 2.0 / 7.0


def humidity_negativity(q: torch.Tensor, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """L_q = mean(max(0, -q)^2) / scale^2 for specific humidity `q` in physical units."""
    return (torch.clamp(-q, min=0.0) ** 2).mean() / (torch.as_tensor(scale, dtype=q.dtype, device=q.device) ** 2)


def static_instability(ta: torch.Tensor, sigma: torch.Tensor, kappa: float = KAPPA_DRY_AIR,
                       scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """L_theta for temperature `ta` [..., L, H, W] in K on levels `sigma` [L] (any order).

    theta_sigma = T sigma^-kappa; penalizes theta decreasing from each level to the one above it.
    """
    if sigma.ndim != 1 or sigma.shape[0] != ta.shape[-3]:
        raise ValueError(f"sigma must be [L] with L = {ta.shape[-3]}, got {tuple(sigma.shape)}")
    if sigma.shape[0] < 2:
        return ta.new_zeros(())
    order = torch.argsort(sigma, descending=True)  # surface (largest sigma) first, then upward
    s = sigma[order].to(ta)
    theta = ta.index_select(-3, order.to(ta.device)) * s.pow(-kappa)[:, None, None]
    drop = torch.clamp(theta[..., :-1, :, :] - theta[..., 1:, :, :], min=0.0)
    return (drop ** 2).mean() / (torch.as_tensor(scale, dtype=ta.dtype, device=ta.device) ** 2)


def _volume(stat: torch.Tensor) -> torch.Tensor:
    """[V] or [V, L] statistics as [V, 1|L, 1, 1]."""
    if stat.ndim == 1:
        return stat[:, None, None, None]
    if stat.ndim == 2:
        return stat[:, :, None, None]
    raise ValueError(f"statistics must be [V] or [V, L], got {tuple(stat.shape)}")


class PhysicsLoss(nn.Module):
    """The weighted physics terms on normalized predictions [B, V, L, H, W].

    Args:
        mean, std: normalization statistics, [V] (per variable) or [V, L] (per level); physical =
            x * std + mean (a zero std means the variable was only centred, as the reader does).
        sigma: the sigma value of each level [L].
        ta_index, hus_index: channel of temperature and specific humidity (None to skip that term).
        humidity_weight, stability_weight: weights of L_q and L_theta.
    """

    mean: torch.Tensor
    std: torch.Tensor
    sigma: torch.Tensor

    def __init__(self, mean: torch.Tensor | Sequence[float], std: torch.Tensor | Sequence[float],
                 sigma: Sequence[float] | torch.Tensor, *,
                 ta_index: int | None, hus_index: int | None, humidity_weight: float = 1.0,
                 stability_weight: float = 0.1, kappa: float = KAPPA_DRY_AIR) -> None:
        super().__init__()
        mean = _volume(torch.as_tensor(mean, dtype=torch.float32))
        std = _volume(torch.as_tensor(std, dtype=torch.float32))
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", torch.where(std > 0, std, torch.ones_like(std)), persistent=False)
        self.register_buffer("sigma", torch.as_tensor(sigma, dtype=torch.float32), persistent=False)
        self.ta_index, self.hus_index = ta_index, hus_index
        self.humidity_weight, self.stability_weight, self.kappa = humidity_weight, stability_weight, kappa

    def physical(self, x: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel `index` of normalized `x` in physical units, and its (mean) scale."""
        std = self.std[index]
        return x[:, index].float() * std + self.mean[index], std.mean()

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted terms {"humidity": L_q, "stability": L_theta} of normalized `x`."""
        out: dict[str, torch.Tensor] = {}
        if self.hus_index is not None:
            q, s = self.physical(x, self.hus_index)
            out["humidity"] = humidity_negativity(q, s)
        if self.ta_index is not None:
            t, s = self.physical(x, self.ta_index)
            out["stability"] = static_instability(t, self.sigma, self.kappa, s)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(weighted sum, unweighted terms) for normalized predictions `x`."""
        terms = self.terms(x)
        weights = {"humidity": self.humidity_weight, "stability": self.stability_weight}
        total = sum((weights[k] * v for k, v in terms.items()), x.new_zeros((), dtype=torch.float32))
        return total, terms
