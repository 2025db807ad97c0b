"""`--model datacube`: the climate emulator (options, data, LightningModule, evaluation, report, task)."""

from .. import lazy_exports

#: public name -> its module here; loaded on first use, so the options module imports alone
_WHERE = {"DEFAULTS": "options", "DatacubeOptions": "options", "DatacubeTask": "task", "EmulatorModule": "module",
          "Normalization": "data", "StoreDataModule": "data", "climatology": "data", "default_climate_store":
          "data", "evaluate": "evaluate", "open_climate_store": "data", "param_columns": "data", "physics_loss":
          "module", "store_normalization": "data"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
