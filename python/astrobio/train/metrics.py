"""Ranking and classification metrics in numpy (no scikit-learn needed by the core trainer).

`roc_auc` and `average_precision` follow scikit-learn's definitions (ties share their average
rank; AP is the step-wise sum over distinct thresholds), which the tests check.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["roc_auc", "average_precision"]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U); NaN unless both classes are present."""
    s, y = np.asarray(scores, float).ravel(), np.asarray(labels).ravel().astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # ties: average rank
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision: sum over distinct thresholds of (R_n - R_{n-1}) P_n; NaN without positives."""
    s, y = np.asarray(scores, float).ravel(), np.asarray(labels).ravel().astype(float)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each group of tied scores
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
