"""The datacube climate emulator: planet/star parameters -> the GCM's climate cube.

Task (the default dataset): given one sample's parameter row (instellation, stellar Teff,
radius, gravity, rotation period and rate, synchronous rotation, surface pressure, equilibrium
temperature; normalized with the store's train statistics) predict the monthly-mean cube
[ta, ua, va, hus, wap] x 10 sigma levels x 32 lat x 64 lon (normalized per variable). It is
evaluated on planets held out of training (the store's split is by planet). The trainer adds
the physics baseline (`astrobio.models.baseline`) to its output by default, so the network
learns the departures from what physics predicts.

Architecture (a U-Net-style 3D decoder; imports only torch):

    params --MLP--> z --linear--> latent volume [C0, l0, h0, w0]   (+ a learned latent volume)
    for each scale s (coarse -> fine):
        trilinear upsample to the scale's size
        concat a learned skip volume of that scale          (U-Net skip: the encoder of a
                                                             fixed grid is a learned constant)
        conv3d -> GroupNorm -> GELU, FiLM(z), conv3d -> GELU, residual
        (the finest scale: upsample + pointwise conv -> GELU; see _UpBlock)
    1x1x1 conv (zero-initialized) + `base`

`base` is a learned cube initialized by the trainer to the training-set mean (the climatology
baseline), so the network starts exactly at the baseline and learns the parameter-dependent
departures from it (a residual parametrization; see `init_base`).

Sizes: the finest scale is the output grid; each coarser scale halves lat and lon, and the level
axis is halved once (below the finest scale). Defaults keep it trainable on 2 CPU cores in
minutes (~1M parameters for the default dataset's shape, most of them in the latent projection
and `base`). Channel counts are multiples of 8 because oneDNN's CPU convolutions are several
times slower otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DatacubeEmulator"]


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class _UpBlock(nn.Module):
    """Upsample, concat the learned skip volume, two 3x3x3 convs with FiLM from z, residual.

    A `light` block (the finest scale, where a 3x3x3 conv costs ~4x the rest of the network on a
    CPU) is upsample + a pointwise (1x1x1) conv: the full-resolution detail of the mean state lives
    in `base`, and the parameter-dependent departures are resolved by the coarser scales.
    """

    def __init__(self, c_in: int, c_out: int, c_skip: int, size: tuple[int, int, int], z_dim: int,
                 light: bool = False) -> None:
        super().__init__()
        self.size = size
        self.light = light
        c_skip = 0 if light else c_skip
        self.skip = nn.Parameter(torch.zeros(1, c_skip, *size)) if c_skip else None
        self.conv1 = nn.Conv3d(c_in + c_skip, c_out, 1 if light else 3, padding=0 if light else 1)
        if not light:
            self.norm = nn.GroupNorm(_groups(c_out), c_out)
            self.film = nn.Linear(z_dim, 2 * c_out)
            self.conv2 = nn.Conv3d(c_out, c_out, 3, padding=1)
            self.proj = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        if self.skip is not None:
            nn.init.normal_(self.skip, std=0.02)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=self.size, mode="trilinear", align_corners=False)
        if self.light:
            return F.gelu(self.conv1(x))
        h = x if self.skip is None else torch.cat([x, self.skip.expand(x.shape[0], -1, -1, -1, -1)], dim=1)
        h = F.gelu(self.norm(self.conv1(h)))
        gamma, beta = self.film(z).chunk(2, dim=1)
        h = h * (1 + gamma[:, :, None, None, None]) + beta[:, :, None, None, None]
        h = F.gelu(self.conv2(h))
        return self.proj(x) + h


class DatacubeEmulator(nn.Module):
    """Parameters [B, P] -> cube [B, V, L, H, W] (normalized units).

    Args:
        n_params: P, the length of a parameter row.
        out_shape: (V, L, H, W) of one sample.
        hidden: width of the parameter MLP (z).
        channels: feature channels of the latent volume and each finer scale (coarse -> fine);
            len(channels) - 1 upsampling stages.
        skip_channels: channels of the learned skip volume concatenated at each scale.
    """

    def __init__(self, n_params: int, out_shape: Sequence[int], *, hidden: int = 128,
                 channels: Sequence[int] = (32, 32, 16, 8), skip_channels: int = 8) -> None:
        super().__init__()
        if len(out_shape) != 4 or min(out_shape) < 1:
            raise ValueError(f"out_shape must be (V, L, H, W) with positive sizes, got {tuple(out_shape)}")
        if len(channels) < 2 or min(channels) < 1:
            raise ValueError(f"channels needs at least two positive widths, got {tuple(channels)}")
        if n_params < 1 or hidden < 1 or skip_channels < 0:
            raise ValueError("n_params and hidden must be >= 1 and skip_channels >= 0")
        self.n_params = int(n_params)
        self.out_shape = tuple(int(s) for s in out_shape)
        v, lv, h, w = self.out_shape
        stages = len(channels) - 1
        sizes = [self._scale_size(lv, h, w, stages - i) for i in range(stages + 1)]
        self.latent_size = sizes[0]
        self.mlp = nn.Sequential(nn.Linear(n_params, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        n_latent = channels[0] * math.prod(self.latent_size)
        self.to_latent = nn.Linear(hidden, n_latent)
        self.latent = nn.Parameter(torch.zeros(1, channels[0], *self.latent_size))
        self.blocks = nn.ModuleList(
            _UpBlock(channels[i], channels[i + 1], skip_channels, sizes[i + 1], hidden, light=i == stages - 1)
            for i in range(stages)
        )
        self.head = nn.Conv3d(channels[-1], v, 1)
        # Zero head: the untrained model predicts `base` (the climatology) exactly.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]
        nn.init.normal_(self.latent, std=0.02)
        self.base = nn.Parameter(torch.zeros(1, *self.out_shape))

    @staticmethod
    def _scale_size(lv: int, h: int, w: int, halvings: int) -> tuple[int, int, int]:
        """Grid size `halvings` scales above the output: lat/lon halve each scale, levels once."""
        f = 2 ** halvings
        return (lv if halvings == 0 else max(1, -(-lv // 2)), max(1, -(-h // f)), max(1, -(-w // f)))

    @torch.no_grad()
    def init_base(self, climatology: torch.Tensor) -> None:
        """Set `base` to a [V, L, H, W] cube (the training-set mean, in normalized units)."""
        if tuple(climatology.shape) != self.out_shape:
            raise ValueError(f"climatology shape {tuple(climatology.shape)} != {self.out_shape}")
        self.base.copy_(climatology.reshape(1, *self.out_shape).to(self.base))

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"params must be [B, {self.n_params}], got {tuple(params.shape)}")
        z = self.mlp(params)
        x = self.to_latent(z).view(params.shape[0], -1, *self.latent_size) + self.latent
        # Channels-last activations: oneDNN's CPU conv3d (backward especially) is ~4x faster on them.
        x = x.contiguous(memory_format=torch.channels_last_3d)
        for block in self.blocks:
            x = block(x, z)
        return self.base + self.head(x)
