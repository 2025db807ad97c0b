"""The classical baselines the detector must beat, on the same raw (unnormalized) patches:

- `snr`: thresholding, as sep or photutils detect: the peak signal-to-noise in the central 5x5
  pixels, (value - median) / (1.4826 MAD) over the patch's real pixels, of the difference image
  when the patch has one (alerts), else of the science image. One number per patch, no training.
- `logistic`: logistic regression (L2, standardized features, fit on the train split) on simple
  features of each channel: central peak SNR, central flux over the patch's total positive
  flux, fraction of negative central pixels, second-moment size of the central source, and
  the fraction of real pixels.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["features", "snr_score", "LogisticBaseline"]

_C = 2  # half-width of the central box (5x5)


def _channel_stats(img: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[B, 5] features of one channel [B, H, W] with its validity mask."""
    b, h, w = img.shape
    cy, cx = h // 2, w // 2
    out = np.zeros((b, 5), np.float64)
    yy, xx = np.mgrid[-_C:_C + 1, -_C:_C + 1]
    for i in range(b):
        v = valid[i] > 0.5
        if v.sum() < 10:
            continue
        vals = img[i][v]
        med = np.median(vals)
        mad = 1.4826 * np.median(np.abs(vals - med)) or 1.0
        box = (img[i, cy - _C:cy + _C + 1, cx - _C:cx + _C + 1] - med) / mad
        pos = np.clip(box, 0, None)
        total = np.clip((vals - med) / mad, 0, None).sum() or 1.0
        size = np.sqrt((pos * (yy ** 2 + xx ** 2)).sum() / pos.sum()) if pos.sum() > 0 else 0.0
        out[i] = [box.max(), pos.sum() / total, (box < 0).mean(), size, v.mean()]
    return out


def features(raw: np.ndarray) -> np.ndarray:
    """[B, 15] features of raw patches [B, 6, H, W] (3 channels, then their masks)."""
    return np.concatenate([_channel_stats(raw[:, c], raw[:, 3 + c]) for c in range(3)], axis=1)


def snr_score(feats: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Central peak SNR of the difference image where the patch has one, else of the science."""
    has_diff = raw[:, 5].mean(axis=(1, 2)) > 0.5
    return np.where(has_diff, feats[:, 10], feats[:, 0])


class LogisticBaseline:
    """L2-regularized logistic regression fit by L-BFGS on standardized features."""

    def __init__(self, l2: float = 1e-2) -> None:
        self.l2 = l2

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LogisticBaseline":
        self.mean, self.std = x.mean(0), x.std(0) + 1e-9
        xt = torch.tensor((x - self.mean) / self.std, dtype=torch.float64)
        yt = torch.tensor(y, dtype=torch.float64)
        self.w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        self.b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([self.w, self.b], max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ self.w + self.b, yt) + self.l2 * (self.w ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (torch.tensor((x - self.mean) / self.std, dtype=torch.float64) @ self.w + self.b).numpy()
