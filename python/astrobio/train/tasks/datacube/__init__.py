"""`--model datacube`: the climate emulator (options, data, LightningModule, evaluation, report, task)."""

from .. import lazy_exports

#: public name -> its module here; loaded on first use, so the options module imports alone
_WHERE = {"DEFAULTS": "options", "DatacubeOptions": "options", "DatacubeTask": "task", "EmulatorModule": "module",
          "EnsembleResult": "ensemble", "KFoldResult": "kfold", "MeanPrediction": "ensemble", "Normalization": "data",
          "PhysicsOptions": "options", "StoreDataModule": "data", "aggregate": "kfold", "climatology": "data",
          "default_climate_store": "data", "evaluate": "evaluate", "evaluate_members": "ensemble",
          "open_climate_store": "data", "param_columns": "data", "physics_loss": "module", "planet_folds": "kfold",
          "run_ensemble": "ensemble", "run_kfold": "kfold", "store_normalization": "data"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
