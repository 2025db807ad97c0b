"""`--model multimodal`: fusion of a climate sample's parameters and cube to predict its surface
climate (options, data, LightningModule, task)."""

from .. import lazy_exports

#: public name -> its module here; loaded on first use, so the options module imports alone
_WHERE = {"DEFAULTS": "options", "FusionModule": "module", "InMemorySamples": "data", "MultimodalDataModule":
          "data", "MultimodalOptions": "options", "MultimodalTask": "task", "Samples": "data", "TARGETS": "data",
          "check_variables": "data", "init_from": "module", "load_samples": "data", "surface_targets": "data"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
