"""Streaming moments (count, mean, M2, min, max) merged with Chan et al.'s parallel update,
so statistics of stores larger than memory are exact and numerically stable (float64)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Moments"]


@dataclass
class Moments:
    """Per-cell moments over a reduction axis; `shape` is the shape of the kept axes."""

    shape: tuple[int, ...]
    count: np.ndarray = field(init=False)
    mean: np.ndarray = field(init=False)
    m2: np.ndarray = field(init=False)
    min: np.ndarray = field(init=False)
    max: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.count = np.zeros(self.shape, np.int64)
        self.mean = np.zeros(self.shape, np.float64)
        self.m2 = np.zeros(self.shape, np.float64)
        self.min = np.full(self.shape, np.inf)
        self.max = np.full(self.shape, -np.inf)

    def update(self, block: np.ndarray, axes: tuple[int, ...]) -> None:
        """Fold in `block`, reducing over `axes` (what is left must have `self.shape`)."""
        x = block.astype(np.float64, copy=False)
        n = int(np.prod([x.shape[a] for a in axes]))
        if n == 0:
            return
        mean_b = x.mean(axis=axes)
        m2_b = ((x - np.expand_dims(mean_b, axes)) ** 2).sum(axis=axes)
        self.min = np.minimum(self.min, x.min(axis=axes))
        self.max = np.maximum(self.max, x.max(axis=axes))
        total = self.count + n
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n / total)
        self.count = total

    def merge(self, other: "Moments") -> "Moments":
        out = Moments(self.shape)
        total = self.count + other.count
        safe = np.maximum(total, 1)
        delta = other.mean - self.mean
        out.count = total
        out.mean = self.mean + delta * (other.count / safe)
        out.m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / safe)
        out.min = np.minimum(self.min, other.min)
        out.max = np.maximum(self.max, other.max)
        return out

    def reduce(self, axis: int) -> "Moments":
        """Pool the cells along `axis` (e.g. per-level -> per-variable)."""
        out = Moments(tuple(s for i, s in enumerate(self.shape) if i != axis))
        for i in range(self.shape[axis]):
            part = Moments(out.shape)
            part.count = np.take(self.count, i, axis)
            part.mean = np.take(self.mean, i, axis)
            part.m2 = np.take(self.m2, i, axis)
            part.min = np.take(self.min, i, axis)
            part.max = np.take(self.max, i, axis)
            out = out.merge(part)
        return out

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation."""
        return np.sqrt(self.m2 / np.maximum(self.count, 1))

    def to_json(self) -> dict[str, list]:
        return {
            "count": self.count.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
        }
