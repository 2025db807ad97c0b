"""`--model graph`: a variational graph autoencoder (`astrobio.models.GraphVAE`) trained for
link prediction on the real metabolic networks of the default dataset (cobra's E. coli
iJO1366, Salmonella iYS1720 and e_coli_core; `model.graph.networks`).

Task. Each network's metabolite-metabolite graph (undirected, currency metabolites and biomass
excluded; see `astrobio.ingest.metabolic`) is split once by PyG's `RandomLinkSplit` with a fixed
seed (`model.graph.split_seed`): `val_fraction` and `test_fraction` of its edges are held out,
with as many sampled non-edges each. Training sees only the train edges (message passing and
positives) plus fresh non-edges sampled per step; validation scores the val pairs with train
edges for message passing; test scores the test pairs with train + val edges. All networks form
one disjoint PyG batch (one graph per network; `data.batch_size` graphs per step).

Metrics: ROC AUC and average precision on the held-out pairs, pooled over networks ("all") and
per network. Baselines on exactly the same pairs and the same visible edges: common neighbours
(|N(i) & N(j)|) and Adamic-Adar (sum over shared neighbours of 1/log degree). The monitored
metric is the pooled validation AUC (higher is better).

Loss: reconstruction BCE (positives and sampled non-edges) + beta x KL / N, beta rising linearly
from 0 to `kl_weight` over `kl_anneal_epochs` (KL annealing, Bowman et al. 2016). The noise of
each training step (posterior sample, negative pairs) is drawn from a generator seeded with
(trainer.seed, global step), so a resumed run repeats it exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ....errors import ConfigError
from ...._optional import require
from ....models.graph import GraphVAE
from ...config import TrainConfig
from ...evaluation import Evaluation
from ...metrics import average_precision, roc_auc
from ...optim import optimizer_steps
from ...report import fmt, plot_metric_curves, rows_table
from .. import BuildContext, Built, Phase
from .data import BASELINES, GraphDataModule, heuristic_scores, link_split, node_features
from .module import GraphModule
from .options import DEFAULTS, GraphOptions, search_space
from .store import open_metabolic

__all__ = ["GraphTask"]


class GraphTask:
    """Link prediction on held-out edges; baselines common neighbours and Adamic-Adar."""

    name = "graph"
    data_kind = "graph"
    monitor = "val/auc"
    mode = "max"
    options_type = GraphOptions
    phases = (Phase("graph", "graph"),)  # its --mode full phase
    defaults = DEFAULTS
    search_space = staticmethod(search_space)  # astrobio tune's default space

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        require("torch_geometric")  # fail here, before any work, when the extra is missing
        _, _, self.graphs = open_metabolic(cfg, list(cfg.model.options.networks))
        self.identity = {"networks": list(self.graphs)}
        return self.identity

    def build(self, cfg: TrainConfig, ctx: BuildContext) -> Built:
        g = cfg.model.options
        feats, self.feature_names = node_features(self.graphs)
        self.splits: dict[str, list[Any]] = {"train": [], "val": [], "test": []}
        self.counts: dict[str, dict[str, int]] = {}
        for i, (name, graph) in enumerate(self.graphs.items()):
            if graph.edge_index.shape[1] < 20:
                raise ConfigError(f"network {name!r} has {graph.edge_index.shape[1] // 2} edges; link prediction needs at least 10")
            parts = link_split(feats[name], graph.edge_index, val=g.val_fraction, test=g.test_fraction, seed=g.split_seed + i)
            for split, data in parts.items():
                self.splits[split].append(data)
            self.counts[name] = {"nodes": graph.num_nodes, "edges": graph.edge_index.shape[1] // 2,
                                 "train_edges": int(parts["train"].pos_edge_label_index.shape[1]),
                                 "val_edges": int(parts["val"].pos_edge_label_index.shape[1]),
                                 "test_edges": int(parts["test"].pos_edge_label_index.shape[1])}
        try:
            model = GraphVAE(len(self.feature_names), hidden=g.hidden, latent=g.latent)
        except ValueError as e:
            raise ConfigError(f"model 'graph': {e}") from None
        meta = {"store": dict(self.identity), "networks": list(self.graphs),
                "features": self.feature_names, "counts": self.counts, **ctx.hardware}
        per_rank = -(-len(self.graphs) // cfg.data.batch_size)
        module = GraphModule(model, cfg, history=ctx.history, total_steps=optimizer_steps(cfg, per_rank))
        data = GraphDataModule(self.splits, cfg.data.batch_size)
        return Built(data, module, per_rank, meta)

    @torch.no_grad()
    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> Evaluation:
        model = module.model.eval()
        evaluation: dict[str, Any] = {}
        for split in ("val", "test"):
            pooled: dict[str, list[np.ndarray]] = {"labels": [], "model": [], **{b: [] for b in BASELINES}}
            networks: dict[str, dict[str, Any]] = {}
            for name, data in zip(self.graphs, self.splits[split]):
                data = data.to(module.device)
                z = model(data.x, data.edge_index)
                pairs = torch.cat([data.pos_edge_label_index, data.neg_edge_label_index], dim=1)
                labels = np.r_[np.ones(data.pos_edge_label_index.shape[1]), np.zeros(data.neg_edge_label_index.shape[1])]
                scores = {"model": model.score(z, pairs).double().cpu().numpy(),
                          **heuristic_scores(data.edge_index.cpu().numpy(), int(data.num_nodes), pairs.cpu().numpy())}
                networks[name] = {k: {"auc": roc_auc(s, labels), "ap": average_precision(s, labels)} for k, s in scores.items()}
                networks[name]["n_pairs"] = int(len(labels))
                pooled["labels"].append(labels)
                for k, s in scores.items():
                    pooled[k].append(s)
            labels = np.concatenate(pooled.pop("labels"))
            evaluation[split] = {"all": {k: {"auc": roc_auc(np.concatenate(v), labels),
                                             "ap": average_precision(np.concatenate(v), labels)} for k, v in pooled.items()},
                                 "networks": networks}
            evaluation[split]["all"]["n_pairs"] = int(len(labels))
        pooled_test = evaluation["test"]["all"]
        return Evaluation(held_out_split="test", metric="auc", direction="max", model=pooled_test["model"]["auc"],
                          baselines={b: pooled_test[b]["auc"] for b in ("common_neighbours", "adamic_adar")},
                          evaluation=evaluation, details={"networks": self.counts, "features": self.feature_names})

    def table(self, summary: dict[str, Any]) -> str:
        rows = [("split", "networks (held-out pairs)", "metric", "VGAE", "common neighbours", "Adamic-Adar")]
        for split, res in summary["evaluation"].items():
            for i, (name, r) in enumerate([("all", res["all"]), *res["networks"].items()]):
                for metric in ("auc", "ap"):
                    rows.append((split if i == 0 and metric == "auc" else "", f"{name} ({r['n_pairs']})" if metric == "auc" else "",
                                 metric.upper(), fmt(r["model"][metric]), fmt(r["common_neighbours"][metric]),
                                 fmt(r["adamic_adar"][metric])))
        head = (f"run {summary['run_dir']}: graph VAE, link prediction on {', '.join(summary['networks'])}; best epoch "
                f"{summary['best_epoch']} of {summary['epochs_run']} (val AUC {fmt(summary['best_score'] or float('nan'))}); "
                f"{summary['wall_time_s']:.0f} s; precision {summary['precision']}")
        return rows_table(head, rows)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        """(metric, model, baseline, baseline value) rows for the --mode full table."""
        r = summary["evaluation"]["test"]["all"]
        return [(f"test {m.upper()} (pooled)", fmt(r["model"][m]), "common neighbours / Adamic-Adar",
                 f"{fmt(r['common_neighbours'][m])} / {fmt(r['adamic_adar'][m])}") for m in ("auc", "ap")]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        base = summary["evaluation"]["val"]["all"]["adamic_adar"]["auc"]
        return {"loss_curves": str(plot_metric_curves(history, run_dir / "loss_curves.png", metric="val_auc",
                                                      label="val AUC (pooled)", baseline=base, baseline_label="Adamic-Adar"))}
