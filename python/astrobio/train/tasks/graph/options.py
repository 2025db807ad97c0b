"""The graph VAE's options (`model.options` of `--model graph`) and its defaults for the shared
config sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ....errors import ConfigError
from ...config import nest_dotted

__all__ = ["GraphOptions", "DEFAULTS"]


@dataclass
class GraphOptions:
    """The graph VAE (`--model graph`): link prediction on metabolic networks."""

    networks: list[str] = field(default_factory=lambda: ["iJO1366", "iYS1720", "e_coli_core"])
    hidden: int = 64                  # GCN hidden width
    latent: int = 32                  # embedding size (mu, logstd)
    kl_weight: float = 1.0            # final weight of the KL term (per node, as in PyG's VGAE example)
    kl_anneal_epochs: int = 50        # linear KL warm-up from 0 (0: full weight from the start)
    val_fraction: float = 0.05        # held-out edges per network (RandomLinkSplit)
    test_fraction: float = 0.10
    split_seed: int = 0               # the edge split's seed (fixed: independent of trainer.seed)

    def validate(self) -> None:
        checks = [
            (self.latent >= 1 and self.hidden >= 1, "model.options.hidden and latent must be >= 1"),
            (self.kl_weight >= 0 and self.kl_anneal_epochs >= 0, "model.options.kl_weight and kl_anneal_epochs must be >= 0"),
            (0 < self.val_fraction and 0 < self.test_fraction and self.val_fraction + self.test_fraction < 0.5,
             "model.options.val_fraction and test_fraction must be > 0 and sum to < 0.5"),
            (bool(self.networks), "model.options.networks must name at least one network"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


#: one step per epoch (all networks in one batch): many cheap epochs
DEFAULTS: dict[str, Any] = {
    "data": {"batch_size": 3}, "optim": {"lr": 0.01, "weight_decay": 0.0, "warmup_fraction": 0.0},
    "trainer": {"max_epochs": 200, "patience": 30, "checkpoint_every_n_epochs": 50},
}


def search_space(trial: Any) -> dict[str, Any]:
    """`astrobio tune`'s default space for the graph VAE: GCN width, latent size, learning rate, KL weight."""
    return nest_dotted({
        "model.options.hidden": trial.suggest_categorical("model.options.hidden", [32, 64, 128]),
        "model.options.latent": trial.suggest_categorical("model.options.latent", [16, 32, 64]),
        "optim.lr": trial.suggest_float("optim.lr", 1e-3, 3e-2, log=True),
        "model.options.kl_weight": trial.suggest_float("model.options.kl_weight", 1e-2, 1.0, log=True),
    })
