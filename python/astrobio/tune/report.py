"""The end of a study: best.yaml, the best run beside the default config on the held-out split,
plots (optimization history, parameter importances, parallel coordinates) and the summary
table (`summary.txt`, `summary.json`) in the study folder."""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._fsutil import atomic_write
from ..errors import AstrobioError, first_line
from ..train.evaluation import Evaluation
from ..train.report import rows_table

__all__ = ["TuneResult", "finish", "held_out"]

log = logging.getLogger(__name__)


@dataclass
class TuneResult:
    study: str
    storage: str                       # the database URL, credentials redacted
    study_dir: Path
    counts: dict[str, int]             # complete, pruned, failed, running, waiting
    best: dict[str, Any] | None        # number, value, params, run_dir (None: no complete trial)
    best_config: Path | None           # <study_dir>/best.yaml
    default: dict[str, Any] | None     # the default config's held-out result (or why there is none)
    plots: dict[str, str] = field(default_factory=dict)   # name -> PNG path, or "not ...: why"
    table: str = ""


def held_out(task: Any, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The held-out result of one run (its typed `Evaluation`): the task's headline rows
    (metric, model, baseline name, baseline value), the split, and the skill over the reference
    baseline (error metrics only)."""
    evaluation = Evaluation.from_summary(summary)
    return {"split": evaluation.held_out_split, "rows": [list(r) for r in task.headline(dict(summary))],
            "skill": evaluation.skill()}


def _counts(study: Any) -> dict[str, int]:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {name.lower(): states.count(getattr(TrialState, name)) for name in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")}


def _write_best(best: Any, study_dir: Path) -> Path | None:
    config = copy.deepcopy(best.user_attrs.get("config"))
    if not config:
        return None
    config["trainer"]["output_dir"] = None  # a new run of this config gets its own folder
    path = study_dir / "best.yaml"
    with atomic_write(path, "w") as f:
        f.write(f"# best trial {best.number} of study folder {study_dir}: {best.value}\n")
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def _default_run(task: Any, base: Any, study_dir: Path, train: Any) -> dict[str, Any]:
    """The default config's held-out result from `<study_dir>/default`, trained once (under a
    file lock, so processes finishing together train it once; a killed attempt is resumed)."""
    run = study_dir / "default"
    run.mkdir(parents=True, exist_ok=True)
    with open(run / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"note": f"another process is training the default config into {run}; its result will be in "
                            f"{run / 'summary.json'}"}
        summary_path = run / "summary.json"
        if not summary_path.is_file():
            cfg = copy.deepcopy(base)
            cfg.trainer.output_dir = str(run)
            resume = run if (run / "checkpoints" / "last.ckpt").is_file() else None
            log.info("training the default config into %s for comparison", run)
            try:
                train(cfg, resume=resume)
            except AstrobioError as e:  # the study's result stands; say why the comparison is missing
                return {"note": f"the default config's run in {run} failed: {first_line(e)}"}
        summary = json.loads(summary_path.read_text())
    return {"run_dir": str(run), "best_score": summary.get("best_score"), **held_out(task, summary)}


def _plots(study: Any, study_dir: Path, n_complete: int) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out: dict[str, str] = {}
    makers: dict[str, Any] = {"optimization_history": ovm.plot_optimization_history, "param_importances": ovm.plot_param_importances,
              "parallel_coordinate": ovm.plot_parallel_coordinate}
    for name, make in makers.items():
        if n_complete < (2 if name != "optimization_history" else 1):
            out[name] = f"not drawn: not enough trials ({n_complete} complete, needs {2 if name != 'optimization_history' else 1})"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = make(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(13 if name == "parallel_coordinate" else 9, 6 if name == "parallel_coordinate" else 5.5)
            fig.tight_layout()
            path = study_dir / f"{name}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            out[name] = str(path)
        except Exception as e:  # e.g. importances when no parameter varies
            out[name] = f"not drawn: {first_line(e)}"
    return out


def _resources_total(study: Any) -> dict[str, float | None]:
    trials = [t.user_attrs.get("resources") or {} for t in study.get_trials(deepcopy=False)]
    out: dict[str, float | None] = {}
    for key in ("wall_s", "cpu_s", "gpu_energy_j", "cpu_energy_j"):
        values = [r[key] for r in trials if r.get(key) is not None]
        out[key] = sum(values) if values else None
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(name: str, storage: str, counts: dict[str, int], best: Any, direction: str, held: dict[str, Any] | None,
           default: dict[str, Any] | None, plots: dict[str, str], totals: dict[str, float | None], monitor: str) -> str:
    total = sum(counts.values())
    lines = [f"study {name} ({storage}): {total} trials: {counts['complete']} complete, {counts['pruned']} pruned, "
             f"{counts['fail']} failed" + (f", {counts['running']} running" if counts["running"] else "")]
    if best is None:
        lines.append("no complete trial: no best config")
    else:
        lines.append(f"best trial {best.number}: {monitor} {_fmt(best.value)} ({direction})")
        lines += [f"  {k} = {_fmt(v)}" for k, v in sorted(best.params.items())]
    if held and held.get("rows"):
        d_rows = {r[0]: r for r in (default or {}).get("rows", [])}
        rows: list[tuple[str, ...]] = [("held-out metric", "", "best", "default", "baseline")]
        for r in held["rows"]:
            d = d_rows.get(r[0])
            rows.append((r[0], "", r[1], d[1] if d else "-", f"{r[2]} {r[3]}"))
        if held.get("skill") is not None:
            ds = (default or {}).get("skill")
            rows.append(("skill vs baseline", "", f"{100 * held['skill']:+.1f}%", f"{100 * ds:+.1f}%" if ds is not None else "-", ""))
        lines.append(rows_table("held-out split: best trial vs the default config", rows))
    if default and default.get("note"):
        lines.append(f"default config: {default['note']}")
    energy = [f"{k.replace('_j', '')} {_fmt(v)} J" for k, v in totals.items() if k.endswith("_j") and v is not None]
    lines.append(f"cost of all trials: wall {_fmt(totals['wall_s'] or 0.0)} s, CPU {_fmt(totals['cpu_s'] or 0.0)} s"
                 + (f", {', '.join(energy)}" if energy else ", energy not measured (see each trial's resources)"))
    lines += [f"plot {k}: {v}" for k, v in plots.items()]
    return "\n".join(lines)


def finish(study: Any, task: Any, base: Any, study_dir: Path, storage: str, train: Any, *,
           compare_default: bool = True, mlflow: Any = None) -> TuneResult:
    """Write best.yaml, the comparison, plots and the summary of `study`; return the result."""
    counts = _counts(study)
    try:
        best = study.best_trial
    except ValueError:  # no complete trial
        best = None
    best_config = _write_best(best, study_dir) if best is not None else None
    held = best.user_attrs.get("held_out") if best is not None else None
    default = None
    if compare_default and best is not None:
        default = _default_run(task, base, study_dir, train)
    plots = _plots(study, study_dir, counts["complete"])
    totals = _resources_total(study)
    direction = study.direction.name.lower()
    table = _table(study.study_name, storage, counts, best, direction, held, default, plots, totals, task.monitor)
    best_info = None if best is None else {"number": best.number, "value": best.value, "params": best.params,
                                          "run_dir": best.user_attrs.get("run_dir"), "held_out": held}
    summary = {"study": study.study_name, "storage": storage, "model": task.name, "monitor": task.monitor,
               "direction": direction, "counts": counts, "best": best_info, "default": default,
               "best_config": str(best_config) if best_config else None, "plots": plots, "resources_total": totals,
               "trials": [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
                           "run_dir": t.user_attrs.get("run_dir"), "resources": t.user_attrs.get("resources"),
                           "retry_of": t.system_attrs.get("failed_trial")} for t in study.get_trials(deepcopy=False)]}
    with atomic_write(study_dir / "summary.json", "w") as f:
        json.dump(summary, f, indent=2, default=str)
    with atomic_write(study_dir / "summary.txt", "w") as f:
        f.write(table + "\n")
    if mlflow is not None:
        _close_mlflow(mlflow, best)
    return TuneResult(study.study_name, storage, study_dir, counts, best_info, best_config, default, plots, table)


def _close_mlflow(mlflow: Any, best: Any) -> None:
    client, uri, run_id = mlflow
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if best is not None:
        client.log_metric(run_id, "best_value", float(best.value))
        client.set_tag(run_id, "astrobio.best_trial", str(best.number))
    client.set_terminated(run_id)
