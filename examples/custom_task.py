"""Add your own model to astrobio as a task, then train it with the normal entry point.

    python examples/custom_task.py [--store STORE] [--max-epochs N]

The task here predicts one planet parameter (surface gravity) from the others with a small MLP,
beside the train-mean baseline, on the default climate store's planets (or your own cube store).
It is the recipe of docs/add-a-model.md, step by step: options, a
LightningModule, the task class, registration. Everything else (checkpoints, exact resume, early
stopping, logging, the summary table and plots) comes from astrobio's one trainer. In your own
package, register it with an entry point instead:

    [project.entry-points."astrobio.tasks"]
    paramfit = "mypackage.tasks:ParamFitTask"
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from astrobio import ConfigError
from astrobio.reader import CubeReader
from astrobio.train import BuildContext, Built, Evaluation, TrainConfig, register_task
from astrobio.train.cli import main as train_main
from astrobio.train.guards import check_finite
from astrobio.train.history import RunHistory
from astrobio.train.optim import adamw_warmup_cosine, decay_groups, optimizer_steps
from astrobio.train.report import fmt, plot_metric_curves, rows_table
from astrobio.train.tasks.datacube import open_climate_store


# ------------------------------------------------------------------ step 1: the options
@dataclass
class ParamFitOptions:
    target: str = "gravity"           # the store parameter to predict from the others
    hidden: int = 16

    def validate(self) -> None:
        if self.hidden < 1:
            raise ConfigError("model.options.hidden must be >= 1")


# ------------------------------------------------------------------ step 2: the LightningModule
class ParamFitModule(L.LightningModule):
    def __init__(self, model: nn.Module, cfg: TrainConfig, *, history: RunHistory, total_steps: int) -> None:
        super().__init__()
        self.model, self.cfg, self.history, self.total_steps = model, cfg, history, total_steps

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.mse_loss(self.model(x).squeeze(-1), y)
        self.history.record_step(self, check_finite(self, loss, "training loss", batch_idx), batch_idx, len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self._val.append(F.mse_loss(self.model(x).squeeze(-1), y, reduction="sum").detach())
        self._n += len(y)

    def on_validation_epoch_start(self) -> None:
        self._val, self._n = [], 0

    def on_validation_epoch_end(self) -> None:
        rmse = check_finite(self, (torch.stack(self._val).sum() / max(1, self._n)).sqrt(), "validation RMSE")
        self.log("val/rmse", rmse)
        self.history.record_epoch(self, val_loss=float(rmse) ** 2, val_rmse=float(rmse))

    def configure_optimizers(self) -> Any:
        return adamw_warmup_cosine(decay_groups(self.model.named_parameters(), self.cfg.optim.weight_decay),
                                   self.cfg.optim, self.total_steps)


class _Data(L.LightningDataModule):
    def __init__(self, x: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray], batch_size: int, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.splits, self.batch_size, self.seed = torch.from_numpy(x), torch.from_numpy(y), splits, batch_size, seed

    def _loader(self, split: str, shuffle: bool) -> Any:
        idx = self.splits[split]
        data = torch.utils.data.TensorDataset(self.x[idx], self.y[idx])
        return torch.utils.data.DataLoader(data, batch_size=self.batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> Any:
        return self._loader("train", True)

    def val_dataloader(self) -> Any:
        return self._loader("val", False)


# ------------------------------------------------------------------ step 3: the task
class ParamFitTask:
    """One normalized store parameter from the others; baseline: the train mean."""

    name = "paramfit"
    data_kind = "cube"                # data.location is resolved through this kind (astrobio.stores.kinds)
    monitor = "val/rmse"
    mode = "min"
    options_type = ParamFitOptions
    defaults = {"data": {"batch_size": 16}, "trainer": {"max_epochs": 5, "patience": 3}}

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        self.store = open_climate_store(cfg)
        names = [p.name for p in self.store.params]
        if cfg.model.options.target not in names:
            raise ConfigError(f"model.options.target must be one of {names}")
        return {}  # the runner records the store's kind, path and content digest itself

    def build(self, cfg: TrainConfig, ctx: BuildContext) -> Built:
        store, o = self.store, cfg.model.options
        params = CubeReader(store.path).read(np.arange(store.n_samples)).params.astype(np.float32)
        j = [p.name for p in store.params].index(o.target)
        self.x, self.y = np.delete(params, j, axis=1), params[:, j]
        self.splits = {s: store.samples(s) for s in ("train", "val", "test")}
        model = nn.Sequential(nn.Linear(self.x.shape[1], o.hidden), nn.Tanh(), nn.Linear(o.hidden, 1))
        per_rank = -(-len(self.splits["train"]) // cfg.data.batch_size)
        module = ParamFitModule(model, cfg, history=ctx.history, total_steps=optimizer_steps(cfg, per_rank))
        data = _Data(self.x, self.y, self.splits, cfg.data.batch_size, cfg.trainer.seed)
        return Built(data, module, per_rank, {"target": o.target, **ctx.hardware})

    @torch.no_grad()
    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> Evaluation:
        mean = float(self.y[self.splits["train"]].mean())
        evaluation = {}
        for split in ("val", "test"):
            idx = self.splits[split]
            pred = module.model(torch.from_numpy(self.x[idx]).to(module.device)).squeeze(-1).double().cpu().numpy()
            evaluation[split] = {"n": int(len(idx)), "model": float(np.sqrt(np.mean((pred - self.y[idx]) ** 2))),
                                 "train_mean": float(np.sqrt(np.mean((mean - self.y[idx]) ** 2)))}
        test = evaluation["test"]  # the typed result the runner, the --mode full table and astrobio tune read
        return Evaluation(held_out_split="test", metric="rmse", direction="min", model=test["model"],
                          baselines={"train_mean": test["train_mean"]}, evaluation=evaluation)

    def table(self, summary: dict[str, Any]) -> str:
        rows = [("split", "metric", "MLP", "train mean")]
        rows += [(f"{s} ({r['n']})", "rmse [normalized]", fmt(r["model"]), fmt(r["train_mean"]))
                 for s, r in summary["evaluation"].items()]
        return rows_table(f"run {summary['run_dir']}: paramfit, {summary['config']['model']['options']['target']}", rows)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        r = summary["evaluation"]["test"]
        return [("test RMSE [normalized]", fmt(r["model"]), "train mean", fmt(r["train_mean"]))]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        return {"loss_curves": str(plot_metric_curves(history, run_dir / "loss_curves.png", metric="val_rmse",
                                                      label="val RMSE", baseline=summary["evaluation"]["val"]["train_mean"]))}


# ------------------------------------------------------------------ step 4: register it and train
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=None, help="cube store with planet parameters (default: the default climate store)")
    ap.add_argument("--max-epochs", default="3")
    ap.add_argument("--output-dir", default=None)
    args, rest = ap.parse_known_args(argv)
    register_task("paramfit", ParamFitTask)
    cli = ["--model", "paramfit", "--max-epochs", args.max_epochs, *rest]
    if args.store:
        cli += ["--store", args.store]
    if args.output_dir:
        cli += ["--output-dir", args.output_dir]
    return train_main(cli)


if __name__ == "__main__":
    sys.exit(main())
