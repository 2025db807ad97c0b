"""The datacube emulator's options (`model.options` of `--model datacube`) and its defaults for
the shared config sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...config import nest_dotted

__all__ = ["DatacubeOptions", "PhysicsOptions", "DEFAULTS"]


@dataclass
class PhysicsOptions:
    """The physics loss terms (`astrobio.models.PhysicsLoss`: non-negative humidity, dry static
    stability), `model.options.physics` (`--physics-constraints` sets `enabled`). Configs and
    checkpoints written before round two held them as the top-level section `physics`
    (`astrobio.train.resolve` moves it here)."""

    enabled: bool = False
    humidity_weight: float = 1.0
    stability_weight: float = 0.1
    kappa: float = 2.0 / 7.0


@dataclass
class DatacubeOptions:
    """`astrobio.models.DatacubeEmulator`'s constructor options (checked by the model itself)."""

    hidden: int = 128
    channels: list[int] = field(default_factory=lambda: [32, 32, 16, 8])
    skip_channels: int = 8
    #: predict departures from the physics baseline (`astrobio.models.PhysicsBaseline`) rather
    #: than from the climatology; checkpoints written before this option existed load as False
    physics_baseline: bool = True
    #: with `physics_baseline`: a ridge regression of the departures on the inputs
    #: (`astrobio.models.linear`) before the network, which learns what is left; checkpoints
    #: written before this option existed load as False
    linear_departure: bool = True
    physics: PhysicsOptions = field(default_factory=PhysicsOptions)

    #: options a saved config may lack (written before they existed) -> the value that reproduces
    #: the run it trained (`astrobio.train.resolve.migrate_saved_options`)
    LEGACY: ClassVar[dict[str, Any]] = {"physics_baseline": False, "linear_departure": False}
    #: options a resumed run may change: they weigh the loss, the network stays the same
    RESUMABLE: ClassVar[frozenset[str]] = frozenset({"physics"})

    def validate(self) -> None:
        """Nothing beyond the types: the model refuses bad widths with a ConfigError when built."""

    def network_options(self) -> dict[str, Any]:
        """The options `astrobio.models.DatacubeEmulator` takes (everything but `physics_baseline`,
        `linear_departure` and `physics`)."""
        return {"hidden": self.hidden, "channels": list(self.channels), "skip_channels": self.skip_channels}


#: the shared sections' dataclass defaults are the datacube's
DEFAULTS: dict[str, Any] = {}


def search_space(trial: Any) -> dict[str, Any]:
    """`astrobio tune`'s default space for the climate emulator: learning rate and decay, MLP
    width, decoder widths/depth, skip channels, batch size (the model has no dropout)."""
    return nest_dotted({
        "optim.lr": trial.suggest_float("optim.lr", 3e-4, 1e-2, log=True),
        "optim.weight_decay": trial.suggest_float("optim.weight_decay", 1e-6, 1e-2, log=True),
        "model.options.hidden": trial.suggest_categorical("model.options.hidden", [64, 128, 256]),
        "model.options.channels": trial.suggest_categorical(
            "model.options.channels", [[16, 16, 8], [32, 16, 8], [32, 32, 16, 8], [64, 32, 16, 8]]),
        "model.options.skip_channels": trial.suggest_categorical("model.options.skip_channels", [4, 8, 16]),
        "data.batch_size": trial.suggest_categorical("data.batch_size", [4, 8, 16]),
    })
