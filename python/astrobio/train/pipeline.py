"""`--mode full`: every component trained in phases from one command, into
`<run>/phases/<phase>/` (each a normal run folder: checkpoints, summary, plots).

The phases are declared by the tasks (`astrobio.train.tasks.Phased`: each task's `phases`), run
in the registry's order of their tasks, each task's in its own order, and a phase after the
phases whose best checkpoints it starts from (`Phase.init_from`); `trainer.phases` picks a subset,
in that order. The built-in tasks declare

    datacube           the climate emulator
    graph              the graph VAE on the metabolic networks
    language           the LoRA language model (reaction name -> subsystem)
    multimodal-params  the parameters encoder (multimodal, modalities [params])
    multimodal-cube    the datacube encoder (multimodal, modalities [cube])
    multimodal         fusion (modalities [params, cube]); its encoders and unimodal heads start
                       from the best checkpoints of the two encoder phases

Resumable at phase boundaries: `--mode full --resume <run>` skips the phases that finished
(their `summary.json` exists), continues the interrupted one exactly from its last checkpoint,
and runs the rest. The user's settings (--config, --set, flags) are saved in
`<run>/pipeline.json` and apply to every phase on top of each model's defaults; settings given
with --resume are applied after them. Model options are per model here (`model.<name>.<option>`,
e.g. `--set model.graph.hidden=16`): each phase reads its own model's section. Every phase is
one call of `astrobio.train.train`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._fsutil import atomic_write
from ..errors import ConfigError
from .config import TrainConfig
from .resolve import model_name, resolve
from .report import rows_table, write_json
from .tasks import Phase, Phased, get_task, task_names
from .trainer import train

__all__ = ["Phase", "PipelineResult", "declared_phases", "run_full"]

log = logging.getLogger(__name__)


STATE = "pipeline.json"


@dataclass
class PipelineResult:
    run_dir: Path
    phases: dict[str, dict[str, Any]]  # phase -> its summary
    table: str


def declared_phases() -> list[Phase]:
    """Every phase the registered tasks declare (`Phased`), in the registry's order, each task's in
    its own order, a phase after the phases it starts from (`init_from`)."""
    declared = [phase for name in task_names() if isinstance(task := get_task(name), Phased) for phase in task.phases]
    names = [p.name for p in declared]
    if len(set(names)) != len(names):
        raise ConfigError(f"two tasks declare a --mode full phase of the same name: {sorted(n for n in set(names) if names.count(n) > 1)}")
    ordered: list[Phase] = []
    waiting = list(declared)
    while waiting:
        ready = [p for p in waiting if all(src in {o.name for o in ordered} or src not in names for src in p.init_from.values())]
        if not ready:
            raise ConfigError(f"--mode full phases start from each other in a circle: {[p.name for p in waiting]}")
        ordered.append(ready[0])
        waiting.remove(ready[0])
    return ordered


def _selected(layers: list[dict[str, Any]]) -> list[Phase]:
    phases = declared_phases()
    chosen = None
    for layer in layers:
        t = layer.get("trainer")
        if isinstance(t, dict) and "phases" in t:
            chosen = t["phases"]
    if chosen is None:
        return phases
    if not isinstance(chosen, list) or not chosen:
        raise ConfigError(f"trainer.phases must be a non-empty list of phases, got {chosen!r}")
    known = {p.name for p in phases}
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise ConfigError(f"unknown phases {unknown}; phases: {', '.join(p.name for p in phases)}")
    return [p for p in phases if p.name in chosen]


def _output_dir(layers: list[dict[str, Any]]) -> str | None:
    out = None
    for layer in layers:
        t = layer.get("trainer")
        if isinstance(t, dict) and t.get("output_dir"):
            out = t["output_dir"]
    return out


def phase_config(phase: Phase, layers: list[dict[str, Any]], run_dir: Path, done: dict[str, dict[str, Any]]) -> TrainConfig:
    """The phase model's defaults < the user's layers < the phase's own settings. The user's
    model options are per model (`model.<name>`), so each phase takes its own model's."""
    user = []
    for layer in layers:
        if isinstance(layer.get("model"), dict):
            if "options" in layer["model"]:
                raise ConfigError("--mode full trains several models: give options per model (model.<name>.<option>, "
                                  "e.g. --set model.graph.hidden=16), not model.options")
            layer = {**layer, "model": {k: v for k, v in layer["model"].items() if k != "name"}}
        user.append(layer)
    cfg = resolve([*user, phase.overrides], model=phase.model)
    for option, source in phase.init_from.items():
        best = (done.get(source) or {}).get("checkpoints", {}).get("best")
        if best:
            setattr(cfg.model.options, option, best)
        else:
            log.info("phase %s: %s did not run in this pipeline; %s starts from scratch", phase.name, source, option)
    cfg.trainer.output_dir = str(run_dir / "phases" / phase.name)
    cfg.trainer.phases = None
    return cfg.validate()


def _resume_point(phase_dir: Path) -> Path | None:
    last = phase_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        return last
    ckpts = sorted((phase_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    return ckpts[-1] if ckpts else None


def run_full(layers: list[dict[str, Any]], *, resume: str | Path | None = None) -> PipelineResult:
    """Run (or continue) the full pipeline. `layers`: the user's settings in precedence order."""
    if model_name(*layers, default=""):
        raise ConfigError("--mode full trains every model in phases; drop --model (choose phases with --set trainer.phases=[...])")
    started = time.perf_counter()
    if resume is not None:
        run_dir = Path(resume)
        state_path = run_dir / STATE
        if not state_path.is_file():
            raise ConfigError(f"{run_dir} is not a --mode full run (no {STATE}); resume a single model without --mode full")
        state = json.loads(state_path.read_text())
        layers = [*state["layers"], *layers]
    else:
        out = _output_dir(layers)
        run_dir = Path(out) if out else Path("runs") / f"full-{time.strftime('%Y%m%d-%H%M%S')}"
        if (run_dir / STATE).is_file() or (run_dir / "phases").is_dir():
            raise ConfigError(f"{run_dir} already holds a pipeline; continue it with --mode full --resume {run_dir} "
                              "or choose another --output-dir")
        state = {"layers": layers}
    run_dir = run_dir.resolve()
    phases = _selected(layers)
    run_dir.mkdir(parents=True, exist_ok=True)
    state["phases"] = [p.name for p in phases]
    write_json(run_dir / STATE, state)
    done: dict[str, dict[str, Any]] = {}
    for phase in phases:
        phase_dir = run_dir / "phases" / phase.name
        summary_path = phase_dir / "summary.json"
        if summary_path.is_file():
            log.info("phase %s: finished earlier, skipped", phase.name)
            done[phase.name] = json.loads(summary_path.read_text())
            continue
        cfg = phase_config(phase, layers, run_dir, done)
        point = _resume_point(phase_dir)
        log.info("phase %s (--model %s)%s", phase.name, phase.model, f": resuming from {point}" if point else "")
        result = train(cfg, resume=point)
        if result.summary is None:  # a non-zero rank under DDP
            continue
        done[phase.name] = result.summary
    table = _table(run_dir, done, time.perf_counter() - started)
    with atomic_write(run_dir / "summary.txt", "w") as f:
        f.write(table + "\n")
    write_json(run_dir / "summary.json", {"run_dir": str(run_dir), "phases": done})
    return PipelineResult(run_dir, done, table)


def _table(run_dir: Path, done: dict[str, dict[str, Any]], seconds: float) -> str:
    rows = [("phase", "held-out metric", "model", "baseline", "baseline value", "wall time")]
    for name, summary in done.items():
        for i, row in enumerate(get_task(summary["model"]).headline(summary)):
            rows.append((name if i == 0 else "", *row, f"{summary['wall_time_s']:.0f} s" if i == 0 else ""))
    head = f"full pipeline {run_dir}: {len(done)} phases ({seconds:.0f} s this invocation); each phase's table is in phases/<name>/summary.txt"
    return rows_table(head, rows)
