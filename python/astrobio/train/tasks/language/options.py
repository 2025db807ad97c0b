"""The LoRA language model's options (`model.options` of `--model language`) and its defaults
for the shared config sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ....errors import ConfigError
from ...config import nest_dotted

__all__ = ["LanguageOptions", "DEFAULTS"]


@dataclass
class LanguageOptions:
    """The LoRA language model (`--model language`): reaction name -> subsystem (the data rules
    are astrobio.datasets.reactions'; optim.lr is the LoRA matrices' learning rate)."""

    networks: list[str] | None = None  # metabolic models to read (None: all; only iJO1366 has subsystems)
    r: int = 8                        # LoRA rank
    alpha: int = 16
    dropout: float = 0.1              # LoRA dropout
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])
    head_dropout: float = 0.1
    max_length: int = 64              # word pieces per name
    head_lr: float = 3e-3             # the new classification head's learning rate
    label_smoothing: float = 0.0
    class_weight: str = "balanced"    # balanced | none (cross-entropy weights n / (K n_k))
    min_count: int = 10               # rarer subsystems merge into "other" (rare=other) or are dropped
    rare: str = "other"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    subset: list[int] | None = None   # [train, val, test] sizes: the first examples of each split (quick runs)

    def validate(self) -> None:
        checks = [
            (self.class_weight in ("balanced", "none"), "model.options.class_weight must be balanced or none"),
            (self.rare in ("other", "drop"), "model.options.rare must be other or drop"),
            (self.subset is None or (len(self.subset) == 3 and min(self.subset) >= 1),
             "model.options.subset must be [train, val, test] sizes >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


#: fine-tuning a pretrained encoder: few epochs, AdamW with decoupled weight decay, short warmup
DEFAULTS: dict[str, Any] = {
    "data": {"batch_size": 32},
    "optim": {"lr": 1e-3, "weight_decay": 0.01, "warmup_fraction": 0.06, "min_lr_ratio": 0.05},
    "trainer": {"max_epochs": 8, "patience": 3, "checkpoint_every_n_epochs": 4},
}


def search_space(trial: Any) -> dict[str, Any]:
    """`astrobio tune`'s default space for the LoRA classifier: rank, scale, LoRA and head learning rates."""
    return nest_dotted({
        "model.options.r": trial.suggest_categorical("model.options.r", [4, 8, 16]),
        "model.options.alpha": trial.suggest_categorical("model.options.alpha", [8, 16, 32]),
        "optim.lr": trial.suggest_float("optim.lr", 1e-4, 3e-3, log=True),
        "model.options.head_lr": trial.suggest_float("model.options.head_lr", 1e-3, 1e-2, log=True),
    })
