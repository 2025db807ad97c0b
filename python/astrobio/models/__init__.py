"""Models (each imports only torch and its own library) and the registry the trainer builds from."""

from __future__ import annotations

from typing import Any

from torch import nn

from .datacube import DatacubeEmulator
from .physics import KAPPA_DRY_AIR, PhysicsLoss, humidity_negativity, static_instability

__all__ = ["MODELS", "build_model", "DatacubeEmulator", "PhysicsLoss", "KAPPA_DRY_AIR", "humidity_negativity",
           "static_instability"]

#: name -> model class; every class takes (n_params, out_shape, **options).
MODELS: dict[str, type[nn.Module]] = {"datacube": DatacubeEmulator}


def build_model(name: str, n_params: int, out_shape: tuple[int, ...], **options: Any) -> nn.Module:
    """Build a registered model; unknown names and bad options raise astrobio.ConfigError."""
    from ..errors import ConfigError

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](n_params, out_shape, **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {name!r}: {e}") from None
