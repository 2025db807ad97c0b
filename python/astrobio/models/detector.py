"""A small CNN that says whether a real source sits at the centre of an observation patch.

Input [B, C, H, W]: the normalized image channels (science, reference, difference) and their
validity masks (1 real pixel, 0 missing), as the Rust core collates them from an observation
store. Two conv stages pool the patch to a quarter; the logit reads both the whole patch
(global average: sky, neighbours, artefacts) and its centre (average of the central cells:
the candidate itself), so a bright neighbour off-centre does not make a positive. The value
channels enter through asinh (Lupton et al. 1999's stretch): linear for the faint pixels a
detector is about, logarithmic for stars a thousand IQRs bright, which would otherwise swamp
the batch statistics. Pure torch.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Detector"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Detector(nn.Module):
    """Patch -> one logit (source at the centre). `width`: channels of the first stage."""

    def __init__(self, in_channels: int = 6, width: int = 8, dropout: float = 0.1, values: int = 3) -> None:
        super().__init__()
        self.values = values
        self.features = nn.Sequential(_block(in_channels, width), nn.MaxPool2d(2), _block(width, 2 * width), nn.MaxPool2d(2),
                                      _block(2 * width, 4 * width))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([torch.asinh(x[:, :self.values]), x[:, self.values:]], dim=1)
        f = self.features(x)
        h, w = f.shape[-2:]
        cy, cx = h // 2, w // 2
        centre = f[..., max(0, cy - 1):cy + 2, max(0, cx - 1):cx + 2].mean(dim=(-2, -1))
        return self.head(torch.cat([f.mean(dim=(-2, -1)), centre], dim=1)).squeeze(-1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Binary cross-entropy (positives weighted by `pos_weight` when the classes are unbalanced)."""
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=pos_weight)
