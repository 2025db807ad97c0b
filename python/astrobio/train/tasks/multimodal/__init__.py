"""`--model multimodal`: fusion of a climate sample's parameters and cube to predict its surface
climate (options, data, LightningModule, task)."""

from .data import TARGETS, InMemorySamples, MultimodalDataModule, Samples, check_variables, load_samples, surface_targets
from .module import FusionModule, init_from
from .options import DEFAULTS, MultimodalOptions
from .task import MultimodalTask

__all__ = ["DEFAULTS", "FusionModule", "InMemorySamples", "MultimodalDataModule", "MultimodalOptions", "MultimodalTask",
           "Samples", "TARGETS", "check_variables", "init_from", "load_samples", "surface_targets"]
