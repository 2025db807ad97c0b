"""The detector's options (`model.options` of `--model detector`) and its defaults for the
shared config sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ....errors import ConfigError

__all__ = ["DetectorOptions", "DEFAULTS"]


@dataclass
class DetectorOptions:
    """A small CNN on observation patches: is there a real source at the centre?"""

    width: int = 8                    # channels of the first conv stage
    dropout: float = 0.1
    augment: bool = True              # random 90-degree rotations and flips (the sky has no up)
    operating_fpr: float = 0.05       # the operating point: threshold at this false-positive rate
    bootstrap: int = 1000             # resamples of the held-out split for the intervals

    def validate(self) -> None:
        if self.width < 1:
            raise ConfigError("model.options.width must be >= 1")
        if not 0.0 < self.operating_fpr < 1.0:
            raise ConfigError("model.options.operating_fpr must be in (0, 1)")
        if self.bootstrap < 10:
            raise ConfigError("model.options.bootstrap must be >= 10")


DEFAULTS: dict[str, Any] = {
    "data": {"batch_size": 64},
    "optim": {"lr": 2e-3, "weight_decay": 1e-4, "warmup_fraction": 0.05},
    "trainer": {"max_epochs": 15, "patience": 5, "checkpoint_every_n_epochs": 5},
}
