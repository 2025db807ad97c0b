"""The text task: reaction name -> subsystem with a LoRA-tuned MiniLM encoder, its baselines and
metrics. Names are imported lazily: `import astrobio.text` loads neither Lightning, transformers,
peft nor scikit-learn.

Pieces: `astrobio.datasets.reactions` (examples and split), `astrobio.models.language` (model,
adapter save/load, `check_llm_stack`), `.data` (tokenized DataModule), `.module`
(LightningModule), `.baselines`, `.metrics`, `.fit` (`fit_language`, `evaluate_language`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LanguageConfig": "fit", "LanguageResult": "fit", "evaluate_language": "fit", "fit_language": "fit",
    "predict_language": "fit",
    "LanguageModule": "module",
    "ReactionDataModule": "data", "PadCollate": "data", "TokenizedTexts": "data", "tokenize": "data",
    "majority_baseline": "baselines", "tfidf_baseline": "baselines",
    "classification_metrics": "metrics", "confusion": "metrics", "metrics_from_confusion": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
