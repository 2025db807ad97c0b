"""The multimodal fusion model's options (`model.options` of `--model multimodal`) and its
defaults for the shared config sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ....errors import ConfigError
from ...config import nest_dotted

__all__ = ["MultimodalOptions", "DEFAULTS"]


@dataclass
class MultimodalOptions:
    """Multimodal fusion (`--model multimodal`) on climate samples; see docs/training.md."""

    modalities: list[str] = field(default_factory=lambda: ["params", "cube"])
    embed: int = 64                   # embedding size of each encoder
    cube_channels: list[int] = field(default_factory=lambda: [32, 64])
    cube_variables: list[str] = field(default_factory=lambda: ["ua", "va", "hus", "wap"])
    dropout: float = 0.1
    init_params: str | None = None    # checkpoint whose params encoder initializes this one (--mode full)
    init_cube: str | None = None      # checkpoint whose cube encoder initializes this one (--mode full)

    def validate(self) -> None:
        checks = [
            (bool(self.modalities) and set(self.modalities) <= {"params", "cube"} and len(set(self.modalities)) == len(self.modalities),
             "model.options.modalities must be a non-empty subset of [params, cube]"),
            (self.embed >= 1 and 0 <= self.dropout < 1, "model.options.embed must be >= 1 and dropout in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


DEFAULTS: dict[str, Any] = {
    "data": {"batch_size": 16}, "optim": {"lr": 2e-3},
    "trainer": {"max_epochs": 60, "patience": 15, "checkpoint_every_n_epochs": 20},
}


def search_space(trial: Any) -> dict[str, Any]:
    """`astrobio tune`'s default space for the fusion model: embedding size, dropout, learning rate."""
    return nest_dotted({
        "model.options.embed": trial.suggest_categorical("model.options.embed", [32, 64, 128]),
        "model.options.dropout": trial.suggest_float("model.options.dropout", 0.0, 0.3),
        "optim.lr": trial.suggest_float("optim.lr", 3e-4, 1e-2, log=True),
    })
