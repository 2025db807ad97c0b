"""Ranking and classification metrics in numpy (no scikit-learn needed by the core trainer).

`roc_auc` and `average_precision` follow scikit-learn's definitions (ties share their average
rank; AP is the step-wise sum over distinct thresholds), which the tests check.

Classification metrics come from a confusion matrix, so a model's validation (summed exactly
over ranks), its held-out evaluation and its baselines compute every number the same way:

  accuracy  = trace(C) / sum(C)
  macro-F1  = mean over classes of 2 TP / (2 TP + FP + FN), over the classes that occur in the
              truth or the predictions (scikit-learn's `f1_score(average="macro")` convention)
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["roc_auc", "average_precision", "confusion", "metrics_from_confusion", "classification_metrics"]


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


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """C[t, p] = number of examples of class t predicted as p ([K, K] int64)."""
    t = np.asarray(y_true, np.int64)
    p = np.asarray(y_pred, np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def metrics_from_confusion(c: np.ndarray) -> dict[str, float]:
    """{'accuracy', 'macro_f1', 'n'} of a confusion matrix (NaN metrics for an empty one)."""
    c = np.asarray(c, np.float64)
    n = c.sum()
    if n == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "n": 0}
    tp = np.diag(c)
    support, predicted = c.sum(1), c.sum(0)
    present = (support + predicted) > 0
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return {"accuracy": float(tp.sum() / n), "macro_f1": float(f1.mean()), "n": int(n)}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 of predictions (see the module docstring)."""
    return metrics_from_confusion(confusion(y_true, y_pred, num_classes))
