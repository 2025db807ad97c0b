"""The graph task's data: node features, the fixed link split, the heuristic baselines' scores,
negative sampling, and the LightningDataModule (one graph per network and split)."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch

from ...._optional import require
from ...rng import seeded_rng

__all__ = ["BASELINES", "GraphDataModule", "node_features", "link_split", "heuristic_scores", "sample_negatives"]

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
    caller seeds it per step). Drawn on the CPU, whatever the batch's device, so a seed gives
    the same negatives on every device; returned on the batch's device."""
    bounds = batch.ptr.cpu()
    ptr = bounds.tolist()
    pos = batch.pos_edge_label_index
    owner = torch.bucketize(pos[0].cpu(), bounds[1:], right=True)
    known = known.cpu()
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
