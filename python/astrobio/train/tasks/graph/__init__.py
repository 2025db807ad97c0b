"""`--model graph`: the graph VAE, link prediction on metabolic networks (options, store, data,
LightningModule, task). torch_geometric is imported only when the task runs (`require`)."""

from .. import lazy_exports

#: public name -> its module here; loaded on first use, so the options module imports alone
_WHERE = {"BASELINES": "data", "DEFAULTS": "options", "GraphDataModule": "data", "GraphModule": "module",
          "GraphOptions": "options", "GraphTask": "task", "heuristic_scores": "data", "link_split": "data",
          "node_features": "data", "open_metabolic": "store", "sample_negatives": "data"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
