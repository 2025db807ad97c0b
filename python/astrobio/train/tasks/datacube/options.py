"""The datacube emulator's options (`model.options` of `--model datacube`) and its defaults for
the shared config sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DatacubeOptions", "DEFAULTS"]


@dataclass
class DatacubeOptions:
    """`astrobio.models.DatacubeEmulator`'s constructor options (checked by the model itself)."""

    hidden: int = 128
    channels: list[int] = field(default_factory=lambda: [32, 32, 16, 8])
    skip_channels: int = 8

    def validate(self) -> None:
        """Nothing beyond the types: the model refuses bad widths with a ConfigError when built."""


#: the shared sections' dataclass defaults are the datacube's
DEFAULTS: dict[str, Any] = {}
