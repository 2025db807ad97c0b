"""`astrobio evaluate RUN --store ...`: a trained emulator scored on any cube store with its
variables, grid and planet parameters, in the training table's layout beside the same baselines
(the training climatology and the run's physics baseline), with the GCM's noise floor and, for an
ensemble, the calibration of its spread.

The samples are read with the *run's* normalization (`RunNormalizedReader`), never the evaluated
store's own, so the model sees its inputs exactly as in training; on the run's own store that
is the same as the training evaluation. The metrics are the datacube task's (`evaluate`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._fsutil import atomic_write
from ..errors import ConfigError
from ..reader import Batch, CubeReader
from ..stores.cube import Store, open_store
from ..train.tasks.datacube import climatology
from ..train.tasks.datacube.data import resolve_split
from ..train.tasks.datacube.evaluate import evaluate
from ..train.tasks.datacube.report import summary_table
from .calibration import plot_reliability
from .intervals import interval_rows, planet_intervals
from .load import to_normalized
from .untouched import checkpoint_digest, is_untouched, ledger_entry, open_ledger

if TYPE_CHECKING:
    from .load import Emulator  # noqa: F401 (annotations)

__all__ = ["EvaluationResult", "RunNormalizedReader", "check_compatible", "evaluate_store", "resolve_store"]


@dataclass
class EvaluationResult:
    """The evaluation of an emulator on a store: `summary` (the training summary's layout:
    `evaluation.<split>`, `units`), its printed `table`, and the files written."""

    summary: dict[str, Any]
    table: str
    files: list[Path] = field(default_factory=list)


def resolve_store(ref: str | Path) -> Store:
    """A cube store by path or URL, or a registered `name@vN` (checked against the registry)."""
    text = str(ref)
    if "@" in text and not Path(text).exists() and not text.startswith("s3://"):
        from ..registry import require_extra

        require_extra()
        from ..registry.lineage import load_info

        info = load_info(text)
        if info["kind"] != "cube":
            raise ConfigError(f"{text} is a {info['kind']} store; the emulator is evaluated on a cube store")
        return open_store(info["uri"])
    return open_store(ref)


def check_compatible(emulator: Emulator, store: Store) -> None:
    """ConfigError in one line naming the first difference between `store` and what the emulator
    was trained on: variables, their units, the grid (shape, lat, lon, level) or the parameters."""
    ours, theirs = emulator.variables, store.variables
    if [v.name for v in theirs] != [v.name for v in ours]:
        raise ConfigError(f"store {store.path} has variables {[v.name for v in theirs]}; the emulator predicts {[v.name for v in ours]}")
    for a, b in zip(ours, theirs):
        if a.units != b.units:
            raise ConfigError(f"store {store.path}: variable {a.name} is in {b.units!r}, the emulator's in {a.units!r}")
    if tuple(store.sample_shape[1:]) != tuple(emulator.store.sample_shape[1:]):
        raise ConfigError(f"store {store.path} has grid (level, lat, lon) {tuple(store.sample_shape[1:])}; the emulator's is "
                          f"{tuple(emulator.store.sample_shape[1:])}")
    mine, other = emulator.coords, store.manifest.get("coords") or {}
    for axis in ("level", "lat", "lon"):
        x, y = (mine.get(axis) or {}).get("values"), (other.get(axis) or {}).get("values")
        if x is not None and y is not None and not np.allclose(x, y, rtol=0, atol=1e-3):
            raise ConfigError(f"store {store.path}: its {axis} coordinate differs from the emulator's "
                              f"(first {y[0]:g}..{y[-1]:g} vs {x[0]:g}..{x[-1]:g}); regrid it first")
    have = {p.name: p for p in store.params}
    missing = [p.name for p in emulator.params if p.name not in have]
    if missing:
        raise ConfigError(f"store {store.path} lacks the planet parameter(s) {', '.join(missing)} the emulator takes")
    for p in emulator.params:
        if have[p.name].units != p.units:
            raise ConfigError(f"store {store.path}: parameter {p.name} is in {have[p.name].units!r}, the emulator's in {p.units!r}")


class RunNormalizedReader:
    """Reads a store's samples normalized with the emulator's (training) statistics, its
    parameter columns in the emulator's order."""

    def __init__(self, emulator: Emulator, store: Store) -> None:
        self.reader = CubeReader(store.path, normalize="none")
        names = [p.name for p in store.params]
        self.columns = [names.index(n) for n in emulator.param_names]
        self.norm, self.param_norm = emulator.norm, emulator.param_norm

    def read(self, indices: np.ndarray) -> Batch:
        raw = self.reader.read(indices)
        cubes = to_normalized(self.norm, raw.cubes).astype(np.float32)
        params = to_normalized(self.param_norm, raw.params[:, self.columns]).astype(np.float32)
        return Batch(indices=raw.indices, cubes=np.ascontiguousarray(cubes), params=np.ascontiguousarray(params))


def _indices(emulator: Emulator, store: Store, own: bool, split: str | None) -> tuple[str, np.ndarray]:
    if split in (None, "") and own:
        splits = resolve_split(store, emulator.config.data.split)
        split = "test" if splits.get("test") else "val"
        return split, store.run_samples(splits[split])
    if split in (None, "", "all"):
        return "all", np.arange(store.n_samples, dtype=np.int64)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split must be train, val, test or all, not {split!r}")
    runs = resolve_split(store, emulator.config.data.split)[split] if own else store.split.get(split, [])
    if not runs:
        raise ConfigError(f"store {store.path} has no runs in its {split!r} split; use --split all")
    return split, store.run_samples(runs)


def evaluate_store(emulator: Emulator, store: str | Path | Store, *, split: str | None = None,
                   out_dir: str | Path | None = None, batch_size: int = 16, again: bool = False) -> EvaluationResult:
    """Score `emulator` on `store` (a path, URL, name@vN or an opened store): its held-out split
    when it is the training store, else every sample (or `split`). With `out_dir`, writes
    evaluation.json, evaluation.txt and (ensembles) reliability.png there. On an untouched store
    the evaluation is recorded in the ledger; a checkpoint already evaluated on it is refused
    (ConfigError) unless `again`."""
    opened = store if isinstance(store, Store) else resolve_store(store)
    check_compatible(emulator, opened)
    if not is_untouched(opened):
        return _write(_score(emulator, opened, split, batch_size), out_dir)
    digest = checkpoint_digest(emulator.checkpoints)
    with open_ledger() as ledger:
        previous = ledger.check(emulator.run_dir, digest, str(opened.manifest["content_digest"]), again)
        summary = _score(emulator, opened, split, batch_size)
        name = summary["held_out_split"]
        res = summary["evaluation"][name]
        ledger.append(ledger_entry(emulator.run_dir, emulator.checkpoints, digest, opened, name, res,
                                   res.get("intervals", {}), again, previous))
    summary["untouched"] = {"ledger": str(ledger.path), "checkpoint_digest": digest, "evaluation": previous + 1,
                            "again": again}
    return _write(summary, out_dir)


def _score(emulator: Emulator, opened: Store, split: str | None, batch_size: int) -> dict[str, Any]:
    """The summary of one evaluation: overall, per planet, and the skills' intervals over planets."""
    own = opened.manifest.get("content_digest") == emulator.store.manifest.get("content_digest")
    name, indices = _indices(emulator, opened, own, split)
    cfg = emulator.config
    train = emulator.store.run_samples(resolve_split(emulator.store, cfg.data.split)["train"])
    clim = climatology(emulator.store, train, cfg.data.normalize)
    members = emulator.predict_normalized if emulator.ensemble else None
    common = dict(normalize=cfg.data.normalize, norm=emulator.norm, climatology=clim, variables=[v.name for v in emulator.variables],
                  batch_size=batch_size, device=emulator.device, baseline=emulator.members[0].baseline,
                  reader=None if own else RunNormalizedReader(emulator, opened))
    res = evaluate(lambda p: emulator.predict_normalized(p).mean(dim=0), opened.path, indices, members=members, **common)
    res.pop("fields"), res.pop("field_samples")
    res["runs"] = {}
    for run in opened.runs:
        idx = np.intersect1d(np.arange(run.start, run.start + run.count), indices)
        if len(idx):
            one = evaluate(lambda p: emulator.predict_normalized(p).mean(dim=0), opened.path, idx, **common)
            kinds = [k for k in ("model", "climatology", "physics_baseline") if k in one]
            record: dict[str, Any] = {k: one[k]["rmse"] for k in kinds}
            record.update(n_samples=int(len(idx)), rmse_physical={k: one[k]["rmse_physical"] for k in kinds})
            res["runs"][run.id] = record
    res["intervals"] = planet_intervals(res["runs"])  # {} with fewer than 2 planets
    summary = _summary_shell(emulator)
    summary.update({"store": str(opened.path), "store_digest": opened.manifest.get("content_digest"), "held_out_split": name,
                    "units": {v.name: v.units for v in emulator.variables}, "evaluation": {name: res},
                    "evaluated_on_training_store": own})
    return summary


def _table(summary: dict[str, Any]) -> str:
    """The training table, the skills' intervals over planets and, on an untouched set, its ledger line."""
    name = summary["held_out_split"]
    parts = [summary_table(summary)]
    intervals = summary["evaluation"][name].get("intervals")
    if intervals:
        parts.append(interval_rows(intervals, summary["units"], f"{name} ({Path(summary['store']).name})"))
    if "untouched" in summary:
        u = summary["untouched"]
        parts.append(f"untouched evaluation set: evaluation {u['evaluation']} of checkpoint {u['checkpoint_digest'][:19]}"
                     f"{' (--again)' if u['again'] else ''}, recorded in {u['ledger']}")
    return "\n\n".join(parts)


def _write(summary: dict[str, Any], out_dir: str | Path | None) -> EvaluationResult:
    """The result, with evaluation.json, evaluation.txt and (ensembles) reliability.png in `out_dir`."""
    table = _table(summary)
    name = summary["held_out_split"]
    res = summary["evaluation"][name]
    files: list[Path] = []
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / "evaluation.json", "w") as f:
            f.write(json.dumps(summary, indent=1, default=str))
        with atomic_write(out / "evaluation.txt", "w") as f:
            f.write(table + "\n")
        files += [out / "evaluation.json", out / "evaluation.txt"]
        if res.get("calibration"):
            files.append(plot_reliability(res["calibration"], out / "reliability.png",
                                          f"reliability on {Path(summary['store']).name} ({name}, {res['n_samples']} samples)"))
    return EvaluationResult(summary, table, files)


def _summary_shell(emulator: Emulator) -> dict[str, Any]:
    """The run's own summary (its header fields: run, epochs, ensemble members) without its evaluation."""
    path = emulator.run_dir / "summary.json"
    base: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    shell = {k: copy.deepcopy(v) for k, v in base.items() if k not in ("evaluation", "plots", "resources", "config")}
    shell.setdefault("run_dir", str(emulator.run_dir))
    shell.setdefault("model", emulator.config.model.name)
    for k, default in (("best_epoch", "?"), ("epochs_run", "?"), ("best_val_rmse", None), ("wall_time_s", 0.0),
                       ("precision", "32-true")):
        shell.setdefault(k, default)
    return shell
