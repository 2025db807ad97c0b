"""What a task's `evaluate` hands the runner: a typed result (`Evaluation`), not a dict whose keys
each reader guesses. The runner writes it into summary.json (`summary_entries`), and the readers
(the --mode full table, `astrobio tune`, k-fold, ensembles) read it back with `from_summary`.

summary.json keeps its layout: `held_out_split`, `metric`, `baseline` (the reference one),
`baselines` (the names), `evaluation`
(split -> the task's full metrics, e.g. `evaluation.test.model.rmse` for the datacube), the
task's own entries (`details`), and `held_out` (the typed headline itself).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["Evaluation"]


@dataclass
class Evaluation:
    """A trained model's held-out result beside its baselines.

    held_out_split: the split the headline numbers are on ("test", else "val").
    metric: the headline metric's name (e.g. "rmse", "auc", "macro_f1").
    direction: "min" or "max", the metric's better direction.
    model: the model's value of `metric` on `held_out_split`.
    baselines: baseline name -> its value of `metric` on `held_out_split`; the first is the
        reference baseline (the one `skill` compares with by default).
    evaluation: split -> the task's full metrics (summary.json's `evaluation`).
    details: the task's other summary entries (units, classes, heads, ...).
    """

    held_out_split: str
    metric: str
    direction: str
    model: float
    baselines: dict[str, float]
    evaluation: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise ConfigError(f"an evaluation's direction is min or max, got {self.direction!r}")
        if self.held_out_split not in self.evaluation:
            raise ConfigError(f"the evaluation has no {self.held_out_split!r} split (it has {sorted(self.evaluation)})")
        if not self.baselines:
            raise ConfigError("an evaluation names at least one baseline")

    @property
    def baseline(self) -> str:
        """The reference baseline's name (the first of `baselines`)."""
        return next(iter(self.baselines))

    def beats(self, baseline: str | None = None) -> bool:
        """Whether the model is better than `baseline` (default: the reference) on the held-out split."""
        base = self.baselines[baseline or self.baseline]
        return self.model < base if self.direction == "min" else self.model > base

    def skill(self, baseline: str | None = None) -> float | None:
        """1 - model / baseline (> 0: the model is better) for an error metric ("min", perfect
        at 0: the usual skill score); None for a "max" metric, which has no such ratio."""
        base = self.baselines[baseline or self.baseline]
        if self.direction != "min":
            return None
        return 1.0 - self.model / base if base > 0 else math.nan

    def headline(self) -> dict[str, Any]:
        """The typed headline as plain values (summary.json's `held_out`)."""
        out = asdict(self)
        out.pop("evaluation"), out.pop("details")
        return out

    def summary_entries(self) -> dict[str, Any]:
        """The entries this result adds to a run's summary (see the module docstring)."""
        return {**self.details, "held_out_split": self.held_out_split, "metric": self.metric,
                "baseline": self.baseline, "baselines": list(self.baselines), "evaluation": self.evaluation, "held_out": self.headline()}

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> "Evaluation":
        """The result a run's summary (summary.json) holds; ConfigError when it holds none (a
        summary written before `held_out` existed)."""
        head = summary.get("held_out")
        if not isinstance(head, Mapping):
            raise ConfigError(f"the summary of {summary.get('run_dir', 'this run')} has no typed held-out result "
                              "(written by an older astrobio): train it again")
        known = set(cls.__dataclass_fields__) - {"evaluation", "details"}
        return cls(**{k: head[k] for k in known}, evaluation=dict(summary.get("evaluation") or {}))
