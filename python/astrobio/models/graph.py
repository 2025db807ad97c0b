"""The variational graph autoencoder on metabolic networks (Kipf & Welling 2016,
https://arxiv.org/abs/1611.07308), built from PyG's `VGAE` with a two-layer GCN encoder.

Nodes are metabolites (features: element counts, charge, compartment; see
`astrobio.train.tasks.graph.data.node_features`), edges the metabolite-metabolite projection of the
reactions. The encoder maps (x, edge_index) to a Gaussian per node (mu, log sigma); the decoder
scores a pair (i, j) by sigmoid(z_i . z_j). Several networks are one disjoint batch (PyG
`Batch`): message passing never crosses networks.

torch_geometric is imported when a model is built (`require`), so importing this module (and
`astrobio.models`) works without it; building one without it raises DependencyError naming
the `graph` extra.
"""

from __future__ import annotations

import torch
from torch import nn

from .._optional import require

__all__ = ["GCNEncoder", "GraphVAE"]


class GCNEncoder(nn.Module):
    """x [N, F], edge_index [2, E] -> (mu [N, D], logstd [N, D]): GCN -> ReLU -> two GCN heads."""

    def __init__(self, in_features: int, hidden: int, latent: int) -> None:
        super().__init__()
        GCNConv = require("torch_geometric.nn").GCNConv
        self.conv = GCNConv(in_features, hidden)
        self.conv_mu = GCNConv(hidden, latent)
        self.conv_logstd = GCNConv(hidden, latent)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.conv(x, edge_index))
        return self.conv_mu(h, edge_index), self.conv_logstd(h, edge_index)


class GraphVAE(nn.Module):
    """PyG `VGAE(GCNEncoder)` with the loss of the PyG example: reconstruction BCE on positive
    and sampled negative pairs + `kl_weight / N` x KL (the trainer anneals `kl_weight`).

    Args:
        in_features: node feature width F.
        hidden: GCN hidden width.
        latent: embedding size D.
    """

    def __init__(self, in_features: int, *, hidden: int = 64, latent: int = 32) -> None:
        super().__init__()
        if min(in_features, hidden, latent) < 1:
            raise ValueError("in_features, hidden and latent must be >= 1")
        VGAE = require("torch_geometric.nn").VGAE
        self.in_features = int(in_features)
        self.vgae = VGAE(GCNEncoder(in_features, hidden, latent))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Node embeddings z (a sample from the posterior in training, its mean in eval)."""
        return self.vgae.encode(x, edge_index)

    def loss(self, z: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, kl_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, reconstruction, KL) for the last `forward`; `pos`/`neg` are [2, K] node pairs."""
        recon = self.vgae.recon_loss(z, pos, neg)
        kl = self.vgae.kl_loss() / z.shape[0]
        return recon + kl_weight * kl, recon, kl

    @torch.no_grad()
    def score(self, z: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Link probabilities sigmoid(z_i . z_j) of the [2, K] `pairs`."""
        return self.vgae.decoder(z, pairs, sigmoid=True)
