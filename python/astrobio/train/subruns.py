"""One run of a run of runs (the folds of `--kfold`, the members of `--ensemble`): kept when it
finished before as asked, else trained in its own folder (resuming an interrupted one), so the
command that runs them can simply be rerun after a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import TrainConfig

__all__ = ["kept_or_trained"]


def kept_or_trained(cfg: TrainConfig, run_dir: Path, *, scan: bool,
                    finished_as_asked: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The summary of `cfg` trained in `run_dir`: the one there when it exists and
    `finished_as_asked(summary)` accepts it (kept, no training), else a new training (or the
    continuation of an interrupted one). `cfg` is changed in place (its output folder; its store
    scan only when `scan`: one full scan is enough for all the runs). None on a non-zero DDP rank."""
    from .trainer import train

    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if "held_out" in summary and finished_as_asked(summary):  # without it: written before the typed result,
            return summary                                      # so resumed below (nothing left to train) and evaluated again
    cfg.trainer.output_dir = str(run_dir)
    cfg.data.verify = cfg.data.verify and scan
    resume = run_dir if (run_dir / "checkpoints" / "last.ckpt").is_file() else None
    return train(cfg, resume=resume).summary
