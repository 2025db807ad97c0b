"""Classification metrics shared by the model, the baselines and the LightningModule, so every
number in a report is computed the same way: from a confusion matrix.

  accuracy  = trace(C) / sum(C)
  macro-F1  = mean over classes of 2 TP / (2 TP + FP + FN), over the classes that occur in the
              truth or the predictions (scikit-learn's `f1_score(average="macro")` convention;
              the stratified split puts every class in every split, so this is all classes)
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion", "metrics_from_confusion", "classification_metrics"]


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
