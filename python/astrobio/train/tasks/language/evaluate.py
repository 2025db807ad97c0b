"""Held-out evaluation of the language model beside its baselines (majority class; TF-IDF +
logistic regression), all on the same examples and with the same metric code, and the
save -> reload -> reproduce check of the adapter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ....datasets.reactions import ReactionSubsystems
from ....errors import ConfigError, IntegrityError
from ....models.language import EncoderClassifier, LoraSettings, load_adapter, save_adapter
from ...metrics import classification_metrics
from .baselines import TFIDF_GRID, majority_baseline, tfidf_baseline
from .data import PadCollate, tokenize

__all__ = ["evaluate_language", "predict_language", "save_reproducible_adapter"]


@torch.no_grad()
def predict_language(model: EncoderClassifier, tokenizer: Any, texts: Sequence[str], *, max_length: int = 64,
                     batch_size: int = 128, device: str | torch.device = "cpu") -> np.ndarray:
    """Logits [N, K] (float32, CPU) of `texts`, in eval mode, batches padded to their longest text."""
    model.eval().to(device)
    collate = PadCollate(tokenizer.pad_token_id)
    ids = tokenize(tokenizer, texts, max_length)
    out = []
    for start in range(0, len(ids), batch_size):
        batch = collate([{"input_ids": x, "label": 0} for x in ids[start : start + batch_size]])
        out.append(model(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu())
    k = int(model.head.out_features)
    return torch.cat(out).numpy() if out else np.zeros((0, k), np.float32)


def evaluate_language(model: EncoderClassifier | None, data: ReactionSubsystems, tokenizer: Any = None, *,
                      splits: Sequence[str] = ("val", "test"), baselines: bool = True, max_length: int = 64,
                      batch_size: int = 128, device: str | torch.device = "cpu",
                      tfidf_grid: Sequence[tuple[float, str | None]] | None = None) -> dict[str, Any]:
    """Accuracy and macro-F1 per split of the model (when given) and of the baselines (majority
    class; TF-IDF + logistic regression tuned on val), all on the same examples:
    {split: {'n': int, 'model': {...}, 'majority': {...}, 'tfidf_lr': {...}}, 'tfidf_lr_info': {...}}.
    Also `{split: {'predictions': {name: list[int]}}}` for exact comparisons."""
    out: dict[str, Any] = {s: {"n": int(len(data.indices(s))), "predictions": {}} for s in splits}
    preds: dict[str, dict[str, np.ndarray]] = {}
    if model is not None:
        if tokenizer is None:
            raise ConfigError("evaluate_language needs the tokenizer to run the model")
        preds["model"] = {s: predict_language(model, tokenizer, data.texts_of(s), max_length=max_length,
                                              batch_size=batch_size, device=device).argmax(-1) for s in splits}
    if baselines:
        preds["majority"] = majority_baseline(data, splits)
        preds["tfidf_lr"], out["tfidf_lr_info"] = tfidf_baseline(data, splits, grid=tfidf_grid or TFIDF_GRID)
    for name, by_split in preds.items():
        for s in splits:
            out[s][name] = classification_metrics(data.labels_of(s), by_split[s], data.num_classes)
            out[s]["predictions"][name] = [int(x) for x in by_split[s]]
    return out


def save_reproducible_adapter(model: EncoderClassifier, path: Path, data: ReactionSubsystems, tokenizer: Any, *,
                              settings: LoraSettings, predictions: dict[str, list[int]], extra: dict[str, Any],
                              splits: Sequence[str] = ("val", "test"), device: str | torch.device = "cpu") -> Path:
    """Save the adapter (LoRA + head) of `model` to `path`, reload it, and check that the reloaded
    adapter predicts exactly `predictions` (split -> classes of the trained model, computed on
    `device`) on `splits`, on the same device (a CPU and a GPU may break a near tie differently);
    IntegrityError if not. Returns the adapter folder."""
    adapter = save_adapter(model.cpu(), path, classes=list(data.classes), settings=settings, extra=extra)
    reloaded, _ = load_adapter(adapter)
    again = evaluate_language(reloaded, data, tokenizer, splits=splits, max_length=settings.max_length, baselines=False,
                              device=device)
    if any(again[s]["predictions"]["model"] != predictions[s] for s in splits):
        raise IntegrityError("the reloaded adapter does not reproduce the trained model's predictions", path=str(adapter))
    return adapter
