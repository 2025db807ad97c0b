"""`--model graph`: the graph VAE, link prediction on metabolic networks (options, store, data,
LightningModule, task). torch_geometric is imported only when the task runs (`require`)."""

from .data import BASELINES, GraphDataModule, heuristic_scores, link_split, node_features, sample_negatives
from .module import GraphModule
from .options import DEFAULTS, GraphOptions
from .store import open_metabolic
from .task import GraphTask

__all__ = ["BASELINES", "DEFAULTS", "GraphDataModule", "GraphModule", "GraphOptions", "GraphTask", "heuristic_scores",
           "link_split", "node_features", "open_metabolic", "sample_negatives"]
