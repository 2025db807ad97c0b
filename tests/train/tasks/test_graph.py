"""The graph VAE: link prediction on a real metabolic network from the CLI, the split, the
baselines, the negative sampler, KL annealing, batching, exact resume, and the metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from astrobio.train import load_checkpoint
from astrobio.train.cli import main
from astrobio.train.metrics import average_precision, roc_auc

FAST = ["--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "model.options.networks=[e_coli_core]",
        "--set", "model.options.hidden=16", "--set", "model.options.latent=8"]


def test_graph_trains_from_the_cli_and_reports_auc_ap_beside_the_heuristics(ecoli_graphs, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["--model", "graph", "--set", f"data.graphs={ecoli_graphs}", "--output-dir", str(out), "--max-epochs", "30",
               "--set", "trainer.patience=100", "--set", "model.options.kl_anneal_epochs=10", "--set", "trainer.plots=true", *FAST])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "common neighbours" in printed and "Adamic-Adar" in printed and "AUC" in printed
    summary = json.loads((out / "summary.json").read_text())
    test = summary["evaluation"]["test"]["all"]
    assert summary["model"] == "graph" and summary["monitor"] == "val/auc" and summary["mode"] == "max"
    counts = summary["networks"]["e_coli_core"]
    assert counts["edges"] == 80 and counts["test_edges"] == 8 and counts["val_edges"] == 4
    assert test["n_pairs"] == 16  # 8 held-out edges + 8 sampled non-edges
    for k in ("model", "common_neighbours", "adamic_adar"):
        assert 0.0 <= test[k]["auc"] <= 1.0 and 0.0 < test[k]["ap"] <= 1.0
    assert (out / "loss_curves.png").is_file()
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert last["astrobio"]["config"]["model"]["name"] == "graph"
    assert any(k.startswith("model.vgae.encoder.conv_mu") for k in last["state_dict"])
    epochs = last["astrobio"]["history"]["epochs"]
    assert len(epochs) == 30 and all(0 <= e["val_auc"] <= 1 for e in epochs)
    # it learns the network: the reconstruction + KL loss falls well below its start
    assert epochs[-1]["train_loss"] < 0.8 * epochs[0]["train_loss"], [e["train_loss"] for e in epochs]
    # (8 held-out edges cannot show a skill difference; the default run on three networks does: docs/training.md)


def test_kl_annealing_schedule():
    from types import SimpleNamespace

    from astrobio.train import TrainConfig
    from astrobio.train.tasks.graph import GraphModule

    cfg = TrainConfig.for_model("graph")
    cfg.model.options.kl_weight, cfg.model.options.kl_anneal_epochs = 0.5, 4
    betas = [GraphModule.kl_beta(SimpleNamespace(cfg=cfg, current_epoch=e)) for e in range(6)]
    assert betas == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    cfg.model.options.kl_anneal_epochs = 0
    assert GraphModule.kl_beta(SimpleNamespace(cfg=cfg, current_epoch=0)) == 0.5


def test_the_split_is_fixed_disjoint_and_held_out(ecoli_graphs):
    from astrobio.stores.graph import open_graphs
    from astrobio.train.tasks.graph import link_split, node_features

    g = open_graphs(ecoli_graphs)["e_coli_core"]
    x, names = node_features({"e_coli_core": g})
    assert x["e_coli_core"].shape == (72, len(names)) and np.isfinite(x["e_coli_core"]).all()
    a = link_split(x["e_coli_core"], g.edge_index, val=0.05, test=0.1, seed=0)
    b = link_split(x["e_coli_core"], g.edge_index, val=0.05, test=0.1, seed=0)
    assert torch.equal(a["test"].pos_edge_label_index, b["test"].pos_edge_label_index)  # fixed seed: same split

    def pairs(t):
        return {tuple(sorted(p)) for p in t.t().tolist()}

    train, val, test = (pairs(a[s].pos_edge_label_index) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(train | val | test) == g.edge_index.shape[1] // 2
    assert pairs(a["train"].edge_index) == train  # training message passing sees no held-out edge
    assert pairs(a["test"].edge_index) == train | val
    everything = pairs(torch.from_numpy(g.edge_index))
    assert not (pairs(a["test"].neg_edge_label_index) & everything)  # negatives are non-edges


def test_heuristics_on_a_known_graph():
    from astrobio.train.tasks.graph import heuristic_scores

    # path 0-1-2 plus 1-3 and 2-3: pair (0, 2) shares 1; (0, 3) shares 1; (1, 2) shares 3
    und = [(0, 1), (1, 2), (1, 3), (2, 3)]
    ei = np.array([[a for a, b in und] + [b for a, b in und], [b for a, b in und] + [a for a, b in und]])
    s = heuristic_scores(ei, 4, np.array([[0, 0, 1, 0], [2, 3, 2, 1]]))
    assert s["common_neighbours"].tolist() == [1, 1, 1, 0]
    deg1, deg3 = 3, 2
    assert np.allclose(s["adamic_adar"], [1 / np.log(deg1), 1 / np.log(deg1), 1 / np.log(deg3), 0])


def test_negative_sampling_stays_within_each_graph_and_avoids_edges(ecoli_graphs):
    from torch_geometric.data import Batch

    from astrobio.stores.graph import open_graphs
    from astrobio.train.rng import seeded_rng
    from astrobio.train.tasks.graph import link_split, node_features, sample_negatives

    g = open_graphs(ecoli_graphs)["e_coli_core"]
    x, _ = node_features({"e_coli_core": g})
    parts = [link_split(x["e_coli_core"], g.edge_index, val=0.05, test=0.1, seed=s)["train"] for s in (0, 1)]
    batch = Batch.from_data_list(parts)
    known = batch.edge_index[0] * batch.num_nodes + batch.edge_index[1]
    with seeded_rng(5):
        neg = sample_negatives(batch, known)
    with seeded_rng(5):
        again = sample_negatives(batch, known)
    assert torch.equal(neg, again)
    assert neg.shape[1] == batch.pos_edge_label_index.shape[1]
    owner = torch.bucketize(neg, batch.ptr[1:], right=True)
    assert torch.equal(owner[0], owner[1])  # both ends in the same network
    assert not torch.isin(neg[0] * batch.num_nodes + neg[1], known).any() and (neg[0] != neg[1]).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=40))
def test_auc_and_ap_match_scikit_learn(pairs):
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores = np.array([p[0] for p in pairs], float)
    labels = np.array([p[1] for p in pairs], int)
    if labels.min() == labels.max():
        assert np.isnan(roc_auc(scores, labels))
        return
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
