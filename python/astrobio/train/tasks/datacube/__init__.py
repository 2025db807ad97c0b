"""`--model datacube`: the climate emulator (options, data, LightningModule, evaluation, report, task)."""

from .data import Normalization, StoreDataModule, climatology, default_climate_store, open_climate_store, param_columns, store_normalization
from .evaluate import evaluate
from .module import EmulatorModule, physics_loss
from .options import DEFAULTS, DatacubeOptions
from .task import DatacubeTask

__all__ = ["DEFAULTS", "DatacubeOptions", "DatacubeTask", "EmulatorModule", "Normalization", "store_normalization", "StoreDataModule",
           "climatology", "default_climate_store", "evaluate", "open_climate_store", "param_columns", "physics_loss"]
