"""Seed ensembles of the climate emulator (`python -m astrobio.train --ensemble N`, the datacube
task's `run_ensemble`, see `astrobio.train.tasks.Ensembles`): N runs that
differ only in their seed (`trainer.seed`, + 1, ...), evaluated together by the mean of their
predictions on the same held-out planets, beside both baselines and each member's own score.

With a few validation planets, early stopping picks a different epoch for every seed, so single
runs differ by several percent; averaging the members removes that variance (the RMSE of the mean
is never above the members' mean RMSE). Each member is one normal run (`train`) in
``<output_dir>/member-<i>``; a finished member is kept and an interrupted one resumes, so the
command can be rerun after a crash. The ensemble's summary (same layout as a run's, plus
``ensemble``) is written to ``<output_dir>/summary.{json,txt}``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ....errors import ConfigError
from ...location import store_identity
from ...checkpoint import load_checkpoint, restore_weights
from ...config import TrainConfig
from ...evaluation import Evaluation
from ...history import RunHistory
from ...report import write_summary
from ...subruns import kept_or_trained
from .. import BuildContext
from .module import EmulatorModule

if TYPE_CHECKING:
    from .task import DatacubeTask

__all__ = ["run_ensemble", "EnsembleResult", "MeanPrediction"]


@dataclass
class EnsembleResult:
    run_dir: Path
    summary: dict[str, Any]
    table: str
    outputs: str = "summary.txt, summary.json, fields.png, member-<i>/ with each member's run"


class MeanPrediction(nn.Module):
    """The members' mean prediction, shaped like a trained module for the task's evaluation."""

    def __init__(self, members: Sequence[EmulatorModule]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def device(self) -> torch.device:
        return next(self.members[0].parameters()).device

    @torch.no_grad()
    def predict(self, params: torch.Tensor) -> torch.Tensor:
        return torch.stack([m.predict(params) for m in self._members()]).mean(dim=0)

    def _members(self) -> list[EmulatorModule]:
        return [m for m in self.members if isinstance(m, EmulatorModule)]


def evaluate_members(task: "DatacubeTask", cfg: TrainConfig, members: Sequence[EmulatorModule], run_dir: Path) -> Evaluation:
    """The ensemble's held-out result: the task's evaluation of the members' mean prediction
    (the one place that turns member predictions into the ensemble's metrics)."""
    return task.evaluate(cfg, MeanPrediction(members).eval(), run_dir)


def _member(cfg: TrainConfig, run_dir: Path, i: int) -> dict[str, Any]:
    """Member `i`: kept when it finished before with the same seed, else trained (or resumed)."""
    seed = cfg.trainer.seed + i
    member_dir = run_dir / f"member-{i}"
    member_cfg = copy.deepcopy(cfg)
    member_cfg.trainer.seed = seed
    summary = kept_or_trained(member_cfg, member_dir, scan=i == 0,
                              finished_as_asked=lambda s: s.get("config", {}).get("trainer", {}).get("seed") == seed)
    if summary is None:
        raise ConfigError("--ensemble runs on one process (a DDP launch trains each member on every rank)")
    return {"member": i, "seed": seed, "run_dir": str(member_dir), "summary": summary}


def run_ensemble(task: "DatacubeTask", cfg: TrainConfig, n: int) -> EnsembleResult:
    """Train `n` seeds of `cfg` and evaluate their mean prediction with `task`, a fresh datacube
    task (`DatacubeTask.run_ensemble`)."""
    if n < 2:
        raise ConfigError(f"--ensemble needs at least 2 members, got {n}")
    started = time.perf_counter()
    run_dir = Path(cfg.trainer.output_dir or f"runs/ensemble-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.mkdir(parents=True, exist_ok=True)
    members = [_member(cfg, run_dir, i) for i in range(n)]

    # One build of the task (its baselines and linear stage are fitted on the same training
    # planets for every member), then each member's chosen weights.
    ens_cfg = copy.deepcopy(cfg)
    ens_cfg.trainer.output_dir = str(run_dir)
    ens_cfg.data.verify = False  # scanned by the first member
    identity = store_identity(ens_cfg, task, task.open(ens_cfg))
    built = task.build(ens_cfg, BuildContext(hardware={"accelerator": "cpu", "precision": "32-true"}, history=RunHistory()))
    modules = []
    for m in members:
        chosen = m["summary"]["checkpoints"]["best"] or m["summary"]["checkpoints"]["last"]
        module = copy.deepcopy(built.module)
        restore_weights(module, load_checkpoint(chosen)["state_dict"])
        modules.append(module.eval())
    summary: dict[str, Any] = {"run_dir": str(run_dir), "model": cfg.model.name, "store": str(identity.get("path")),
                               "store_digest": identity.get("content_digest")}
    evaluation = evaluate_members(task, ens_cfg, modules, run_dir)
    summary.update(evaluation.summary_entries())
    held_out = evaluation.held_out_split
    summary["ensemble"] = {"members": [
        {"member": m["member"], "seed": m["seed"], "run_dir": m["run_dir"], "best_epoch": m["summary"].get("best_epoch"),
         "rmse": m["summary"]["evaluation"][held_out]["model"]["rmse"],
         "skill": m["summary"]["evaluation"][held_out]["skill"],
         "skill_physics_baseline": m["summary"]["evaluation"][held_out].get("skill_physics_baseline")}
        for m in members]}
    summary["config"] = cfg.to_dict()
    summary["wall_time_s"] = time.perf_counter() - started
    if cfg.trainer.plots:
        summary["plots"] = task.field_plot(run_dir)
    lines = [task.table(summary), f"members on {held_out} (each alone):"]
    for row in summary["ensemble"]["members"]:
        phys = row["skill_physics_baseline"]
        lines.append(f"  member {row['member']} (seed {row['seed']}, best epoch {row['best_epoch']}): rmse {row['rmse']:.4g}, "
                     f"skill vs climatology {100 * row['skill']:+.1f}%"
                     + (f", vs physics {100 * phys:+.1f}%" if phys is not None else ""))
    table = "\n".join(lines)
    write_summary(run_dir, summary, table)
    return EnsembleResult(run_dir, summary, table)
