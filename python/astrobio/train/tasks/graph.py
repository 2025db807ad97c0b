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

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ConfigError
from ...models._optional import require
from ..config import TrainConfig
from ..metrics import average_precision, roc_auc
from ..module import TaskModule, seeded_rng, step_seed
from ._metabolic import open_metabolic

__all__ = ["GraphTask", "GraphDataModule", "GraphModule", "node_features", "link_split", "heuristic_scores",
           "sample_negatives"]

BASELINES = ("common_neighbours", "adamic_adar")
COUNTS = ("C", "H", "N", "O", "P", "S", "other_atoms")


def node_features(graphs: dict[str, Any]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per network a float32 [N, F] matrix over the union of the networks' feature columns:
    log1p of the element counts, charge / 4 (clipped to +-3), formula_known, charge_known, and
    the compartment one-hots (a compartment a network lacks is a zero column). Unknown values
    (NaN in the store) are 0 with their *_known flag 0: no made-up chemistry enters as data."""
    comps = sorted({f for g in graphs.values() for f in g.feature_names if f.startswith("comp:")})
    names = [*COUNTS, "charge", "formula_known", "charge_known", *comps]
    out = {}
    for name, g in graphs.items():
        col = {f: i for i, f in enumerate(g.feature_names)}
        src = g.x.astype(np.float64)
        x = np.zeros((g.num_nodes, len(names)), np.float64)
        for j, f in enumerate(COUNTS):
            x[:, j] = np.log1p(np.nan_to_num(np.clip(src[:, col[f]], 0, None), nan=0.0))
        charge = src[:, col["charge"]]
        x[:, len(COUNTS)] = np.clip(np.nan_to_num(charge, nan=0.0) / 4.0, -3, 3)
        x[:, len(COUNTS) + 1] = np.nan_to_num(src[:, col["formula_known"]], nan=0.0)
        x[:, len(COUNTS) + 2] = np.isfinite(charge)
        for j, f in enumerate(comps, start=len(COUNTS) + 3):
            if f in col:
                x[:, j] = src[:, col[f]]
        out[name] = x.astype(np.float32)
    return out, names


def link_split(x: np.ndarray, edge_index: np.ndarray, *, val: float, test: float, seed: int) -> dict[str, Any]:
    """{"train", "val", "test"}: PyG `Data` from `RandomLinkSplit` (undirected, labels split into
    pos_/neg_edge_label_index; train without negatives, they are sampled per step)."""
    pyg = require("torch_geometric")
    T = require("torch_geometric.transforms")
    data = pyg.data.Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(np.ascontiguousarray(edge_index)),
                         num_nodes=x.shape[0])
    split = T.RandomLinkSplit(num_val=val, num_test=test, is_undirected=True, add_negative_train_samples=False,
                              split_labels=True)
    with seeded_rng(seed):
        train, valid, tst = split(data)
    return {"train": train, "val": valid, "test": tst}


def heuristic_scores(edge_index: np.ndarray, num_nodes: int, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """Common neighbours and Adamic-Adar of the [2, K] `pairs` on the undirected graph `edge_index`."""
    import scipy.sparse as sp

    a = sp.coo_matrix((np.ones(edge_index.shape[1]), (edge_index[0], edge_index[1])), shape=(num_nodes, num_nodes)).tocsr()
    a.data[:] = 1.0  # simple graph (duplicates summed by the conversion)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv_log = np.where(deg > 1, 1.0 / np.log(np.maximum(deg, 2)), 0.0)  # a shared neighbour has degree >= 2
    u, v = pairs
    au, av = a[u], a[v]
    both = au.multiply(av)
    return {"common_neighbours": np.asarray(both.sum(axis=1)).ravel(),
            "adamic_adar": np.asarray(both.multiply(inv_log[None, :]).sum(axis=1)).ravel()}


def sample_negatives(batch: Any, known: torch.Tensor) -> torch.Tensor:
    """[2, K] non-edges: for each graph of `batch`, as many node pairs as it has positives
    (`pos_edge_label_index`), uniform within the graph, not self loops and not in `known`
    (edge keys i * N + j of the visible edges). Draws from torch's global generator (the
    caller seeds it per step)."""
    ptr = batch.ptr.tolist()
    pos = batch.pos_edge_label_index
    owner = torch.bucketize(pos[0], batch.ptr[1:], right=True)
    total = int(batch.num_nodes)
    out = []
    for g in range(len(ptr) - 1):
        need = int((owner == g).sum())
        lo, hi = ptr[g], ptr[g + 1]
        got = torch.empty(2, 0, dtype=torch.long)
        for _ in range(10):  # rejection sampling; sparse graphs accept almost every candidate
            if got.shape[1] >= need or hi - lo < 2:
                break
            cand = torch.randint(lo, hi, (2, 2 * (need - got.shape[1]) + 8))  # real-data-ok: candidate non-edges of the real graph (negative sampling)
            cand = cand[:, cand[0] != cand[1]]
            cand = cand[:, ~torch.isin(cand[0] * total + cand[1], known)]
            got = torch.cat([got, cand], dim=1)
        out.append(got[:, :need])
    return torch.cat(out, dim=1).to(pos.device)


class GraphDataModule(L.LightningDataModule):
    """One graph per network and split; the train loader batches `batch_size` networks in a
    fixed order (the order does not change what a full batch sees, and keeps resume exact)."""

    def __init__(self, splits: dict[str, list[Any]], batch_size: int) -> None:
        super().__init__()
        self.splits = splits
        self.batch_size = batch_size

    def _loader(self, split: str, batch_size: int) -> Any:
        DataLoader = require("torch_geometric.loader").DataLoader
        return DataLoader(self.splits[split], batch_size=batch_size, shuffle=False)

    def train_dataloader(self) -> Any:
        return self._loader("train", self.batch_size)

    def val_dataloader(self) -> Any:
        return self._loader("val", len(self.splits["val"]))


class GraphModule(TaskModule):
    """Trains `GraphVAE` on batches of networks; validation AUC/AP pooled over the networks."""

    def kl_beta(self) -> float:
        g = self.cfg.model.graph
        if g.kl_anneal_epochs <= 0:
            return g.kl_weight
        return g.kl_weight * min(1.0, (self.current_epoch + 1) / g.kl_anneal_epochs)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        n = int(batch.num_nodes)
        known = batch.edge_index[0] * n + batch.edge_index[1]
        beta = self.kl_beta()
        # this step's noise from (seed, step): independent of everything drawn before, so exact on resume
        with seeded_rng(step_seed(self.cfg.trainer.seed, self.current_epoch, batch_idx)):
            neg = sample_negatives(batch, known)
            z = self.model(batch.x, batch.edge_index)
            loss, recon, kl = self.model.loss(z, batch.pos_edge_label_index, neg, beta)
        mean = self._check_finite(loss, "training loss", batch_idx)
        self._record_step(mean, batch_idx, int(batch.num_graphs))
        self.log_dict({"train/recon": recon.detach(), "train/kl": kl.detach(), "train/kl_beta": beta},
                      on_step=True, on_epoch=False, batch_size=int(batch.num_graphs))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val: list[tuple[np.ndarray, np.ndarray]] = []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        z = self.model(batch.x, batch.edge_index)
        pairs = torch.cat([batch.pos_edge_label_index, batch.neg_edge_label_index], dim=1)
        labels = np.r_[np.ones(batch.pos_edge_label_index.shape[1]), np.zeros(batch.neg_edge_label_index.shape[1])]
        self._val.append((self.model.score(z, pairs).double().cpu().numpy(), labels))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        scores = np.concatenate([s for s, _ in self._val])
        labels = np.concatenate([y for _, y in self._val])
        auc, ap = roc_auc(scores, labels), average_precision(scores, labels)
        bce = float(F.binary_cross_entropy(torch.from_numpy(scores).clamp(1e-7, 1 - 1e-7), torch.from_numpy(labels)))
        self._check_finite(torch.tensor(bce), "validation loss")
        self.log("val/auc", auc, prog_bar=True, sync_dist=True)
        self.log("val/ap", ap, sync_dist=True)
        self.log("val/loss", bce, sync_dist=True)
        self._record_epoch(val_loss=bce, val_auc=auc, val_ap=ap)


class GraphTask:
    """Link prediction on held-out edges; baselines common neighbours and Adamic-Adar."""

    name = "graph"
    monitor = "val/auc"
    mode = "max"

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        require("torch_geometric")  # fail here, before any work, when the extra is missing
        path, manifest, self.graphs = open_metabolic(cfg, list(cfg.model.graph.networks))
        self.identity = {"path": str(path), "content_digest": manifest.get("content_digest"), "networks": list(self.graphs)}
        return self.identity

    def build(self, cfg: TrainConfig, hardware: dict[str, str]) -> tuple[Any, Any, int]:
        from ...models.graph import GraphVAE

        g = cfg.model.graph
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
                "features": self.feature_names, "counts": self.counts, **hardware}
        module = GraphModule(model, cfg, meta=meta)
        data = GraphDataModule(self.splits, cfg.data.batch_size)
        per_rank = -(-len(self.graphs) // cfg.data.batch_size)
        return data, module, per_rank

    @torch.no_grad()
    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> dict[str, Any]:
        model = module.model.eval()
        evaluation: dict[str, Any] = {}
        for split in ("val", "test"):
            pooled: dict[str, list[np.ndarray]] = {"labels": [], "model": [], **{b: [] for b in BASELINES}}
            networks = {}
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
        return {"held_out_split": "test", "metric": "auc, ap", "baseline": "common_neighbours, adamic_adar",
                "evaluation": evaluation, "networks": self.counts, "features": self.feature_names}

    def table(self, summary: dict[str, Any]) -> str:
        from ..report import _fmt, rows_table

        rows = [("split", "networks (held-out pairs)", "metric", "VGAE", "common neighbours", "Adamic-Adar")]
        for split, res in summary["evaluation"].items():
            for i, (name, r) in enumerate([("all", res["all"]), *res["networks"].items()]):
                for metric in ("auc", "ap"):
                    rows.append((split if i == 0 and metric == "auc" else "", f"{name} ({r['n_pairs']})" if metric == "auc" else "",
                                 metric.upper(), _fmt(r["model"][metric]), _fmt(r["common_neighbours"][metric]),
                                 _fmt(r["adamic_adar"][metric])))
        head = (f"run {summary['run_dir']}: graph VAE, link prediction on {', '.join(summary['networks'])}; best epoch "
                f"{summary['best_epoch']} of {summary['epochs_run']} (val AUC {_fmt(summary['best_score'] or float('nan'))}); "
                f"{summary['wall_time_s']:.0f} s; precision {summary['precision']}")
        return rows_table(head, rows)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        """(metric, model, baseline, baseline value) rows for the --mode full table."""
        from ..report import _fmt

        r = summary["evaluation"]["test"]["all"]
        return [(f"test {m.upper()} (pooled)", _fmt(r["model"][m]), "common neighbours / Adamic-Adar",
                 f"{_fmt(r['common_neighbours'][m])} / {_fmt(r['adamic_adar'][m])}") for m in ("auc", "ap")]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], module: Any, run_dir: Path) -> dict[str, str]:
        from ..report import plot_metric_curves

        base = summary["evaluation"]["val"]["all"]["adamic_adar"]["auc"]
        return {"loss_curves": str(plot_metric_curves(module.history, run_dir / "loss_curves.png", metric="val_auc",
                                                      label="val AUC (pooled)", baseline=base, baseline_label="Adamic-Adar"))}
