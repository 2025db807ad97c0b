"""`--model multimodal`: fuse a climate sample's two modalities to predict its surface climate.

Task (per sample = one planet-month of the climate store, split by planet as the store says):
  targets  from the lowest model level (largest sigma) of `ta`, in physical units:
           t_surface   area-weighted (cos latitude) global mean temperature [K]
           liquid_fraction  area-weighted fraction of the grid with 273.15 K <= T <= 373.15 K [1]
  inputs   params: the store's planet/star parameters (with the derived rotation rate and T_eq), normalized
           cube:   the other fields of the same sample (`model.options.cube_variables`;
                   default ua, va, hus, wap on every level; `ta` is refused: the targets come from it)
Neither input contains the target: the parameters give the forcing, the cube the circulation
and moisture the temperature has shaped. Fusion has to combine the two.

Models: `astrobio.models.FusionModel`: a params encoder, a cube encoder, a head on each and a
fusion head on both embeddings, trained together (loss: the mean over heads of the MSE on the
train-standardized targets). The same run therefore reports params-only, cube-only and fusion
on the same held-out planets. Baseline: the train mean of each target. Metric: RMSE per target
in physical units and the RMSE on standardized targets (mean over targets); the monitored
metric is the fusion head's (or, with one modality, that head's) validation RMSE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ....data import BatchIndexSampler
from ....errors import ConfigError
from ....models.multimodal import FusionModel
from ...config import TrainConfig
from ...evaluation import Evaluation
from ...optim import optimizer_steps
from ...report import fmt, plot_metric_curves, rows_table
from .. import BuildContext, Built, Phase
from ..datacube.data import open_climate_store
from .data import TARGETS, MultimodalDataModule, check_variables, load_samples
from .module import FusionModule, init_from
from .options import DEFAULTS, MultimodalOptions, search_space

__all__ = ["MultimodalTask"]


class MultimodalTask:
    """Surface climate from parameters, cube, and both; baseline: the train mean."""

    name = "multimodal"
    data_kind = "cube"
    monitor = "val/rmse"
    mode = "min"
    options_type = MultimodalOptions
    #: --mode full: each encoder alone, then fusion starting from their best checkpoints
    phases = (
        Phase("multimodal-params", "multimodal", {"model": {"options": {"modalities": ["params"]}}}),
        Phase("multimodal-cube", "multimodal", {"model": {"options": {"modalities": ["cube"]}}}),
        Phase("multimodal", "multimodal", {"model": {"options": {"modalities": ["params", "cube"]}}},
              {"init_params": "multimodal-params", "init_cube": "multimodal-cube"}),
    )
    defaults = DEFAULTS
    search_space = staticmethod(search_space)  # astrobio tune's default space

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        self.store = store = open_climate_store(cfg)
        check_variables(store, cfg.model.options)
        self.identity = {"n_samples": store.n_samples, "sample_shape": list(store.sample_shape)}
        return self.identity

    def build(self, cfg: TrainConfig, ctx: BuildContext) -> Built:
        store, o = self.store, cfg.model.options
        self.samples = s = load_samples(store, o)
        try:
            model = FusionModel(s.n_params, s.cube_shape, len(TARGETS), modalities=o.modalities,
                                embed=o.embed, cube_channels=o.cube_channels, dropout=o.dropout)
        except ValueError as e:
            raise ConfigError(f"model 'multimodal': {e}") from None
        for modality, path in (("params", o.init_params), ("cube", o.init_cube)):
            if path:
                if modality not in o.modalities:
                    raise ConfigError(f"model.options.init_{modality} is set but {modality} is not among the modalities")
                init_from(model, path, modality)
        meta = {"store": dict(self.identity), "targets": TARGETS, "lowest_level": s.lowest,
                "params": [p.name for p in store.params], "cube_variables": list(o.cube_variables),
                "target_mean": s.y_mean.tolist(), "target_std": s.y_std.tolist(), **ctx.hardware}
        world = cfg.trainer.devices * cfg.trainer.num_nodes
        per_rank = len(BatchIndexSampler(s.splits["train"], cfg.data.batch_size, num_replicas=world))
        module = FusionModule(model, cfg, history=ctx.history, total_steps=optimizer_steps(cfg, per_rank))
        data = MultimodalDataModule(s.dataset, s.splits, cfg.data.batch_size, cfg.trainer.seed)
        return Built(data, module, per_rank, meta)

    @torch.no_grad()
    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> Evaluation:
        model = module.model.eval()
        heads = model.heads
        evaluation: dict[str, Any] = {}
        s = self.samples
        for split in [name for name in ("val", "test") if name in s.splits]:
            idx = s.splits[split]
            b = s.dataset[idx]
            preds = model(b["params"].to(module.device), b["cube"].to(module.device))
            truth = s.y[idx]
            guesses = {"baseline": np.broadcast_to(s.y_mean, truth.shape)}
            guesses.update({h: preds[h].double().cpu().numpy() * s.y_std + s.y_mean for h in heads})
            res: dict[str, Any] = {"n_samples": int(len(idx)), "targets": {}, "standardized": {}}
            for j, (t, unit) in enumerate(TARGETS.items()):
                res["targets"][t] = {k: float(np.sqrt(np.mean((g[:, j] - truth[:, j]) ** 2))) for k, g in guesses.items()}
            for k, g in guesses.items():
                res["standardized"][k] = float(np.sqrt(np.mean(((g - truth) / s.y_std) ** 2)))
            if "fusion" in heads:
                res["fusion_beats"] = {m: res["standardized"]["fusion"] < res["standardized"][m] for m in ("params", "cube")}
            evaluation[split] = res
        held_out = "test" if "test" in evaluation else "val"
        standardized = evaluation[held_out]["standardized"]
        return Evaluation(held_out_split=held_out, metric="rmse", direction="min", model=standardized[heads[-1]],
                          baselines={"train_mean": standardized["baseline"]}, evaluation=evaluation,
                          details={"heads": heads, "targets": TARGETS})

    def table(self, summary: dict[str, Any]) -> str:
        heads = summary["heads"]
        label = {"params": "params only", "cube": "cube only", "fusion": "fusion"}
        rows = [("split", "target", "train mean", *(label[h] for h in heads))]
        for split, res in summary["evaluation"].items():
            first = True
            for t, unit in [*summary["targets"].items(), ("standardized", "mean over targets")]:
                vals = res["standardized"] if t == "standardized" else res["targets"][t]
                rows.append((f"{split} ({res['n_samples']})" if first else "", f"{t} [{unit}]",
                             *(fmt(vals[k]) for k in ("baseline", *heads))))
                first = False
        head = (f"run {summary['run_dir']}: multimodal ({' + '.join(heads)}) RMSE on held-out planets; best epoch "
                f"{summary['best_epoch']} of {summary['epochs_run']}; {summary['wall_time_s']:.0f} s; precision {summary['precision']}")
        beats = summary["evaluation"][summary["held_out_split"]].get("fusion_beats")
        tail = ""
        if beats is not None:
            tail = "\n" + f"fusion beats params only on {summary['held_out_split']}: {'yes' if beats['params'] else 'no'}; " \
                          f"beats cube only: {'yes' if beats['cube'] else 'no'}"
        return rows_table(head, rows) + tail

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        """(metric, model, baseline, baseline value) rows for the --mode full table."""
        split = summary["held_out_split"]
        res = summary["evaluation"][split]["standardized"]
        label = {"params": "params only", "cube": "cube only", "fusion": "fusion"}
        return [(f"{split} RMSE [standardized], {label[h]}", fmt(res[h]), "train mean", fmt(res["baseline"]))
                for h in reversed(summary["heads"])]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        base = summary["evaluation"]["val"]["standardized"]["baseline"]
        return {"loss_curves": str(plot_metric_curves(history, run_dir / "loss_curves.png", metric="val_rmse",
                                                      label=f"val RMSE ({summary['heads'][-1]}, standardized)",
                                                      baseline=base, baseline_label="train mean"))}
