"""Models, one file each (each imports only torch and its own library); each task builds its own.

`DatacubeEmulator` and `FusionModel` need only torch. `GraphVAE` needs torch_geometric and the
language model transformers + peft: their modules import those libraries only when a model is
built (through the optional-dependency door, `astrobio._optional.require`), so `import
astrobio.models` works without them (the model then raises astrobio.DependencyError naming the
pip extra: `graph` or `llm`).
"""

from __future__ import annotations

from .baseline import PhysicsBaseline, fit_physics_baseline
from .datacube import DatacubeEmulator
from .linear import LinearDeparture, fit_linear_departure
from .graph import GCNEncoder, GraphVAE
from .multimodal import FusionModel
from .physics import KAPPA_DRY_AIR, PhysicsLoss, humidity_negativity, static_instability

__all__ = ["DatacubeEmulator", "PhysicsBaseline", "fit_physics_baseline", "LinearDeparture", "fit_linear_departure",
           "PhysicsLoss", "KAPPA_DRY_AIR", "humidity_negativity", "static_instability", "GraphVAE", "GCNEncoder", "FusionModel"]
