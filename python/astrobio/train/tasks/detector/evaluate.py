"""Held-out evaluation of the detector beside its baselines, with bootstrap intervals.

Operating point: each method's threshold is the score above which `operating_fpr` of the split's
negatives fall (the same false-positive rate for every method, as detection is compared);
precision, recall and F1 are taken there. ROC AUC needs no threshold. Intervals: percentile
bootstrap (95%) over the split's patches, the same resamples for every method; `auc_gain` is the
paired interval of model AUC minus baseline AUC. Rows per survey product (ZTF alerts, ZTF image).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ....stores.observation import ObservationStore
from ...metrics import roc_auc
from .baselines import LogisticBaseline, features, snr_score
from .data import PatchBatches, loader

__all__ = ["evaluate_detector", "scores_of", "at_fpr"]


def scores_of(model: torch.nn.Module, store: ObservationStore, split: str, device: Any) -> tuple[np.ndarray, np.ndarray]:
    """(model logits, raw patches [N, 6, H, W]) of `split`, in store order."""
    out = []
    model.eval()
    with torch.no_grad():
        for batch in loader(PatchBatches(store, store.samples(split)), 256):
            out.append(model(batch["x"].to(device)).float().cpu().numpy())
    raw = np.concatenate([b["x"].numpy() for b in loader(PatchBatches(store, store.samples(split), normalize="none"), 256)])
    return np.concatenate(out), raw


def at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> dict[str, float]:
    """Precision, recall, F1 at the threshold where `fpr` of the negatives score above it."""
    y = labels.astype(bool)
    if y.all() or not y.any():
        return {"precision": float("nan"), "recall": float("nan"), "f1": float("nan"), "threshold": float("nan")}
    thr = float(np.quantile(scores[~y], 1.0 - fpr))
    pred = scores > thr
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / int(y.sum())
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "threshold": thr}


def _metrics(scores: dict[str, np.ndarray], y: np.ndarray, fpr: float, n_boot: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)  # real-data-ok: bootstrap resamples of real patches
    n = len(y)
    point = {k: {"auc": roc_auc(s, y), **at_fpr(s, y, fpr)} for k, s in scores.items()}
    boots: dict[str, list[list[float]]] = {k: [] for k in scores}
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        for k, s in scores.items():
            m = at_fpr(s[i], y[i], fpr)
            boots[k].append([roc_auc(s[i], y[i]), m["precision"], m["recall"], m["f1"]])
    out: dict[str, Any] = {"n": n, "positives": int(y.sum()), "negatives": int(n - y.sum())}
    for k in scores:
        b = np.asarray(boots[k], float)
        ci = {name: [float(np.nanpercentile(b[:, j], 2.5)), float(np.nanpercentile(b[:, j], 97.5))] if np.isfinite(b[:, j]).any()
              else [float("nan")] * 2 for j, name in enumerate(("auc", "precision", "recall", "f1"))}
        out[k] = {**point[k], "ci95": ci}
        if k != "model":
            gain = np.asarray(boots["model"], float)[:, 0] - b[:, 0]
            out[k]["auc_gain"] = {"value": point["model"]["auc"] - point[k]["auc"],
                                  "ci95": [float(np.nanpercentile(gain, 2.5)), float(np.nanpercentile(gain, 97.5))]
                                  if np.isfinite(gain).any() else [float("nan")] * 2}
    return out


def evaluate_detector(model: torch.nn.Module, store: ObservationStore, *, fpr: float, n_boot: int, seed: int,
                      device: Any, splits: tuple[str, ...] = ("val", "test")) -> dict[str, Any]:
    """Per split: the model and both baselines overall and per survey product."""
    train_logits, train_raw = scores_of(model, store, "train", device)
    y_train = store.columns["label"].to_numpy()[store.samples("train")]
    logistic = LogisticBaseline().fit(features(train_raw), y_train)
    result: dict[str, Any] = {}
    for split in splits:
        idx = store.samples(split)
        if len(idx) == 0:
            continue
        logits, raw = scores_of(model, store, split, device)
        feats = features(raw)
        scores = {"model": logits, "snr": snr_score(feats, raw), "logistic": logistic.score(feats)}
        y = store.columns["label"].to_numpy()[idx]
        cols = store.columns.iloc[idx]
        rows = _metrics(scores, y, fpr, n_boot, seed)
        rows["per_survey"] = {}
        for (survey, product), _ in cols.groupby(["survey", "product"]):
            where = np.flatnonzero((cols["survey"] == survey).to_numpy() & (cols["product"] == product).to_numpy())
            rows["per_survey"][f"{survey} {product}"] = _metrics({k: s[where] for k, s in scores.items()}, y[where], fpr,
                                                                 n_boot, seed)
        result[split] = rows
    return result
