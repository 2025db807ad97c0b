"""Multimodal fusion of a climate sample's modalities: its planet/star parameters (+ month) and
its datacube (the fields that are not the target's source; see `astrobio.train.tasks.multimodal`).

    params [B, P]            --MLP-->              e_params [B, D] --head_params--> y
    cube   [B, V, L, H, W]   --(V*L) x H x W CNN--> e_cube   [B, D] --head_cube-->   y
    [e_params, e_cube]       --MLP (fusion)-->                                      y

Each encoder has its own head, so the same model reports each single modality beside the
fusion (one training run, the same data and budget); with one modality only its encoder and
head exist (the encoder phases of `--mode full`). Imports only torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ParamsEncoder", "CubeEncoder", "FusionModel"]


class ParamsEncoder(nn.Module):
    """[B, P] -> [B, D]: a two-layer MLP."""

    def __init__(self, n_params: int, embed: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_params, 2 * embed), nn.GELU(), nn.Linear(2 * embed, embed), nn.GELU())

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        return self.net(params)


class CubeEncoder(nn.Module):
    """[B, V, L, H, W] -> [B, D]: variables x levels as channels of a lat-lon CNN (stride-2 convs),
    pooled to a coarse (2 x 4) grid so the latitudinal structure survives, then a linear map."""

    def __init__(self, in_channels: int, embed: int, channels: Sequence[int] = (32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, stride=2, padding=1), nn.GELU()]
            c = width
        self.conv = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((2, 4))
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(c * 8, embed), nn.GELU())

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        b, v, lv, h, w = cube.shape
        return self.proj(self.pool(self.conv(cube.reshape(b, v * lv, h, w))))


class FusionModel(nn.Module):
    """Encoders and heads for `modalities` (a subset of ("params", "cube")); with both, a fusion
    head on the concatenated embeddings.

    Args:
        n_params: P (0 when "params" is not used).
        cube_shape: (V, L, H, W) of the cube input (ignored when "cube" is not used).
        n_targets: outputs per head.
        modalities: which encoders exist.
        embed: embedding size D of each encoder.
        cube_channels: CNN widths of the cube encoder.
        dropout: on the embeddings, in training.
    """

    def __init__(self, n_params: int, cube_shape: Sequence[int], n_targets: int, *, modalities: Sequence[str] = ("params", "cube"),
                 embed: int = 64, cube_channels: Sequence[int] = (32, 64), dropout: float = 0.1) -> None:
        super().__init__()
        modalities = tuple(modalities)
        if not modalities or not set(modalities) <= {"params", "cube"}:
            raise ValueError(f"modalities must be a non-empty subset of (params, cube), got {modalities}")
        if embed < 1 or n_targets < 1 or not cube_channels or min(cube_channels) < 1:
            raise ValueError("embed, n_targets and every cube channel width must be >= 1")
        self.modalities = modalities
        self.drop = nn.Dropout(dropout)
        if "params" in modalities:
            self.params_encoder = ParamsEncoder(n_params, embed)
            self.head_params = nn.Linear(embed, n_targets)
        if "cube" in modalities:
            v, lv = cube_shape[0], cube_shape[1]
            self.cube_encoder = CubeEncoder(v * lv, embed, cube_channels)
            self.head_cube = nn.Linear(embed, n_targets)
        if len(modalities) == 2:
            self.head_fusion = nn.Sequential(nn.Linear(2 * embed, embed), nn.GELU(), nn.Linear(embed, n_targets))

    @property
    def heads(self) -> list[str]:
        """Names of the predictions `forward` returns (the monitored one last)."""
        return [*self.modalities, *(["fusion"] if len(self.modalities) == 2 else [])]

    def forward(self, params: torch.Tensor, cube: torch.Tensor) -> dict[str, torch.Tensor]:
        out, emb = {}, {}
        if "params" in self.modalities:
            emb["params"] = self.drop(self.params_encoder(params))
            out["params"] = self.head_params(emb["params"])
        if "cube" in self.modalities:
            emb["cube"] = self.drop(self.cube_encoder(cube))
            out["cube"] = self.head_cube(emb["cube"])
        if len(self.modalities) == 2:
            out["fusion"] = self.head_fusion(torch.cat([emb["params"], emb["cube"]], dim=1))
        return out
