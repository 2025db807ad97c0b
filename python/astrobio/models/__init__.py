"""Models (each imports only torch and its own library) and the registry the trainer builds from.

`DatacubeEmulator` and `FusionModel` need only torch. `GraphVAE` needs torch_geometric and the
language model transformers + peft: their modules import those libraries only when a model is
built (through the optional-dependency door, `astrobio._optional.require`), so `import astrobio.models` works without them (the model
then raises astrobio.DependencyError naming the pip extra: `graph` or `llm`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError
from .baseline import PhysicsBaseline, fit_physics_baseline
from .datacube import DatacubeEmulator
from .linear import LinearDeparture, fit_linear_departure
from .graph import GCNEncoder, GraphVAE
from .multimodal import FusionModel
from .physics import KAPPA_DRY_AIR, PhysicsLoss, humidity_negativity, static_instability

__all__ = ["MODELS", "build_model", "DatacubeEmulator", "PhysicsBaseline", "fit_physics_baseline", "LinearDeparture", "fit_linear_departure", "PhysicsLoss", "KAPPA_DRY_AIR", "humidity_negativity",
           "static_instability", "GraphVAE", "GCNEncoder", "FusionModel"]

#: name -> model class; every class takes (n_params, out_shape, **options). (The other models
#: are built by their tasks in astrobio.train.tasks.)
MODELS: dict[str, type[nn.Module]] = {"datacube": DatacubeEmulator}


def build_model(name: str, n_params: int, out_shape: tuple[int, ...], **options: Any) -> nn.Module:
    """Build a registered model; unknown names and bad options raise astrobio.ConfigError."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](n_params, out_shape, **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {name!r}: {e}") from None
