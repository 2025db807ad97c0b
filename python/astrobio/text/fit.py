"""How the language pieces go together: `fit_language` fine-tunes the LoRA MiniLM classifier on
the reaction-name -> subsystem split with `lightning.Trainer`, keeps the best epoch by val
macro-F1, evaluates it beside the baselines, saves the adapter, reloads it and checks that the
reloaded adapter predicts exactly the same classes. `evaluate_language` is the metric table.

    from astrobio.text import LanguageConfig, fit_language
    result = fit_language(LanguageConfig(max_epochs=6), output_dir="runs/language")
    print(result.metrics["test"])   # {'model': {...}, 'majority': {...}, 'tfidf_lr': {...}, 'n': ...}

Outputs in `output_dir`: `adapter/` (LoRA + head only, see astrobio.models.language) and
`summary.json` (config, data rules and counts, per-epoch history, metrics, wall time).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..datasets.reactions import ReactionSubsystems, load_reaction_subsystems
from ..errors import ConfigError, IntegrityError
from ..models.language import EncoderClassifier, LoraSettings, build_language_model, check_llm_stack, load_adapter, \
    load_tokenizer, save_adapter
from .metrics import classification_metrics

__all__ = ["LanguageConfig", "LanguageResult", "evaluate_language", "fit_language", "predict_language"]

log = logging.getLogger(__name__)


@dataclass
class LanguageConfig:
    """Everything a language run needs; plain values only (saved in the adapter and summary)."""

    lora: LoraSettings = field(default_factory=LoraSettings)
    # data rules (astrobio.datasets.reactions)
    min_count: int = 10
    rare: Literal["other", "drop"] = "other"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    # optimization
    seed: int = 0
    batch_size: int = 32
    max_epochs: int = 8
    patience: int = 3          # epochs without a better val macro-F1 before stopping
    lr: float = 1e-3           # LoRA matrices
    head_lr: float = 3e-3      # the new classification head
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    min_lr_ratio: float = 0.05
    label_smoothing: float = 0.0
    class_weight: Literal["balanced", "none"] = "balanced"  # CE weights n / (K n_k): macro-F1 counts rare classes
    accelerator: str = "auto"
    precision: str = "32-true"

    def validate(self) -> None:
        self.lora.validate()
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ConfigError("batch_size, max_epochs and patience must be >= 1")
        if self.lr <= 0 or self.head_lr <= 0:
            raise ConfigError("learning rates must be > 0")
        if self.class_weight not in ("balanced", "none"):
            raise ConfigError(f"class_weight must be 'balanced' or 'none', got {self.class_weight!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LanguageResult:
    output_dir: Path
    adapter_dir: Path
    metrics: dict[str, Any]     # split -> {'n', 'model', 'majority', 'tfidf_lr'} (+ 'tfidf_lr_info')
    history: list[dict[str, Any]]
    best_epoch: int | None
    wall_seconds: float
    reproduced: bool            # the reloaded adapter predicted exactly the same classes


@torch.no_grad()
def predict_language(model: EncoderClassifier, tokenizer: Any, texts: Sequence[str], *, max_length: int = 64,
                     batch_size: int = 128, device: str | torch.device = "cpu") -> np.ndarray:
    """Logits [N, K] (float32, CPU) of `texts`, in eval mode, batches padded to their longest text."""
    from .data import PadCollate, tokenize

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
    from .baselines import TFIDF_GRID, majority_baseline, tfidf_baseline

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


def _class_weights(data: ReactionSubsystems) -> torch.Tensor:
    counts = np.bincount(data.labels_of("train"), minlength=data.num_classes).astype(np.float64)
    return torch.tensor(counts.sum() / (data.num_classes * np.maximum(counts, 1.0)), dtype=torch.float32)


def fit_language(cfg: LanguageConfig | None = None, output_dir: str | Path = "runs/language", *,
                 data: ReactionSubsystems | None = None, store: str | Path | None = None, progress: bool = True,
                 tfidf_grid: Sequence[tuple[float, str | None]] | None = None) -> LanguageResult:
    """Fine-tune, evaluate beside the baselines, save the adapter, reload it and check it
    reproduces the predictions (IntegrityError if not). `data`: a prepared split (default: read
    from `store`, the default dataset's metabolic store unless given, with cfg's data rules)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    from .._fsutil import atomic_write_bytes
    from .data import ReactionDataModule
    from .module import KeepBestTrainable, LanguageModule

    t0 = time.perf_counter()
    cfg = cfg or LanguageConfig()
    cfg.validate()
    check_llm_stack()
    if data is None:
        data = load_reaction_subsystems(store, min_count=cfg.min_count, rare=cfg.rare, val=cfg.val_fraction,
                                        test=cfg.test_fraction, seed=cfg.split_seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    tokenizer = load_tokenizer()
    model = build_language_model(data.num_classes, cfg.lora)
    counts = model.trainable_parameters()
    log.info("LoRA MiniLM: %d LoRA + %d head trainable of %d parameters; %d classes, train/val/test %s",
             counts["lora"], counts["head"], counts["total"], data.num_classes, data.info.get("split_sizes"))
    dm = ReactionDataModule(data, tokenizer, batch_size=cfg.batch_size, max_length=cfg.lora.max_length, seed=cfg.seed)
    steps = cfg.max_epochs * math.ceil(len(data.indices("train")) / cfg.batch_size)
    module = LanguageModule(model, lr=cfg.lr, head_lr=cfg.head_lr, weight_decay=cfg.weight_decay,
                            warmup_fraction=cfg.warmup_fraction, min_lr_ratio=cfg.min_lr_ratio,
                            label_smoothing=cfg.label_smoothing, total_steps=steps,
                            class_weights=_class_weights(data) if cfg.class_weight == "balanced" else None)
    keep = KeepBestTrainable()
    trainer = L.Trainer(max_epochs=cfg.max_epochs, accelerator=cfg.accelerator, devices=1, precision=cfg.precision,
                        logger=False, enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        num_sanity_val_steps=0, deterministic="warn",  # warn-only: some CUDA kernels have no deterministic variant
                        callbacks=[keep, EarlyStopping("val/f1", mode="max", patience=cfg.patience)])
    trainer.fit(module, datamodule=dm)
    keep.restore(model)
    model = model.cpu().eval()
    metrics = evaluate_language(model, data, tokenizer, max_length=cfg.lora.max_length, tfidf_grid=tfidf_grid)
    adapter = save_adapter(model, out / "adapter", classes=data.classes, settings=cfg.lora,
                           extra={"config": cfg.to_dict(), "data": _jsonable(data.info), "best_epoch": keep.best_epoch,
                                  "metrics": {s: {k: v for k, v in m.items() if k != "predictions"}
                                              for s, m in metrics.items() if s in data.splits}})
    reloaded, _ = load_adapter(adapter)
    again = evaluate_language(reloaded, data, tokenizer, max_length=cfg.lora.max_length, baselines=False)
    reproduced = all(again[s]["predictions"]["model"] == metrics[s]["predictions"]["model"] for s in ("val", "test"))
    if not reproduced:
        raise IntegrityError("the reloaded adapter does not reproduce the trained model's predictions", path=str(adapter))
    wall = time.perf_counter() - t0
    summary = {"config": cfg.to_dict(), "data": _jsonable(data.info), "trainable": counts, "history": module.history,
               "best_epoch": keep.best_epoch, "metrics": {s: {k: v for k, v in m.items() if k != "predictions"}
                                                          for s, m in metrics.items()},
               "reproduced_after_reload": reproduced, "wall_seconds": round(wall, 1)}
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True).encode())
    return LanguageResult(out, adapter, metrics, copy.deepcopy(module.history), keep.best_epoch, wall, reproduced)


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
