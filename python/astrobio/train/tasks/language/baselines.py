"""Baselines for the reaction-name -> subsystem task, fitted on the train split only and
evaluated on the same splits as the model.

- majority: always the most frequent training class (ties: the lower class index).
- tfidf_lr: TF-IDF over character n-grams (`char_wb`, 2-5, sublinear tf) + multinomial logistic
  regression (scikit-learn). Its regularization C and class weighting are chosen on the val split
  by macro-F1, as the fine-tuned model's best epoch is, so neither side gets more tuning than the
  other. scikit-learn is imported through astrobio's optional-dependency door when the baseline
  is fitted (pip install "astrobio[llm]").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ....datasets.reactions import ReactionSubsystems
from ...._optional import require
from ...metrics import classification_metrics

__all__ = ["majority_baseline", "tfidf_baseline", "TFIDF_GRID"]

#: (C, class_weight) candidates tried on the val split
TFIDF_GRID: tuple[tuple[float, str | None], ...] = tuple((c, w) for c in (1.0, 10.0, 100.0) for w in (None, "balanced"))


def majority_baseline(data: ReactionSubsystems, splits: Sequence[str] = ("train", "val", "test")) -> dict[str, np.ndarray]:
    """Predictions of the majority class of the train split, per split."""
    counts = np.bincount(data.labels_of("train"), minlength=data.num_classes)
    top = int(np.argmax(counts))  # argmax returns the first maximum: ties go to the lower index
    return {s: np.full(len(data.indices(s)), top, np.int64) for s in splits}


def tfidf_baseline(data: ReactionSubsystems, splits: Sequence[str] = ("train", "val", "test"), *,
                   analyzer: str = "char_wb", ngram_range: tuple[int, int] = (2, 5),
                   grid: Sequence[tuple[float, str | None]] = TFIDF_GRID) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Predictions per split of TF-IDF + logistic regression fitted on train, with (C,
    class_weight) chosen on val by macro-F1 (the first best in `grid` order); also returns the
    choice and the val score of every candidate."""
    TfidfVectorizer = require("sklearn.feature_extraction.text").TfidfVectorizer
    LogisticRegression = require("sklearn.linear_model").LogisticRegression
    make_pipeline = require("sklearn.pipeline").make_pipeline
    x_train, y_train = data.texts_of("train"), data.labels_of("train")
    x_val, y_val = data.texts_of("val"), data.labels_of("val")

    def fit(c: float, w: str | None) -> Any:
        pipe = make_pipeline(
            TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True, lowercase=True),
            LogisticRegression(C=c, class_weight=w, max_iter=3000),
        )
        return pipe.fit(x_train, y_train)

    scores = []
    best: tuple[float, Any, tuple[float, str | None]] | None = None
    for c, w in grid:
        pipe = fit(c, w)
        f1 = classification_metrics(y_val, pipe.predict(x_val), data.num_classes)["macro_f1"]
        scores.append({"C": c, "class_weight": w, "val_macro_f1": f1})
        if best is None or f1 > best[0]:
            best = (f1, pipe, (c, w))
    assert best is not None
    _, pipe, (c, w) = best
    preds = {s: np.asarray(pipe.predict(data.texts_of(s)), np.int64) for s in splits}
    info = {"analyzer": analyzer, "ngram_range": list(ngram_range), "C": c, "class_weight": w, "grid": scores}
    return preds, info
