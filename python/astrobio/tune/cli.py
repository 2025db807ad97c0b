"""`astrobio tune`: hyperparameter search over one model (astrobio.tune). Errors are one
line and a non-zero exit; without optuna it is one DependencyError line."""

from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

from .._cli import log_to_console, run_command
from ..train.tasks import task_names

__all__ = ["build_parser", "main"]

EXAMPLES = """examples:
  astrobio tune --model datacube --trials 20 --set trainer.max_epochs=8      # study datacube-tune in runs/datacube-tune/
  astrobio tune --model datacube --trials 20 --set trainer.max_epochs=8 --resume   # continue it (after a crash, or add trials)
  astrobio tune --model datacube --trials 10 --study lr-sweep --space space.yaml --timeout 3600
  astrobio tune --model graph --trials 30 --resume &  astrobio tune --model graph --trials 30 --resume   # two workers, one study

search space YAML (--space; dotted config paths; each replaces or adds a parameter, null drops one):
  optim.lr:        {low: 1.0e-4, high: 1.0e-2, log: true}
  model.options.hidden:    {choices: [64, 128]}
  model.options.channels:  {choices: [[32, 16, 8], [32, 32, 16, 8]]}
  data.batch_size: null

storage: $ASTROBIO_REGISTRY_URL (PostgreSQL) when set, else the registry's SQLite file
($ASTROBIO_HOME/registry.db). Outputs: <output-dir>/trial-<n>/ (each trial's run), best.yaml,
summary.txt, summary.json, optimization_history.png, param_importances.png, parallel_coordinate.png.
"""


def build_parser(prog: str = "astrobio tune") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Tune a model's hyperparameters with optuna: each trial is a normal training run; bad trials are "
                    "pruned; the study lives in a database, so it survives crashes and can be shared by processes.")
    p.add_argument("--model", choices=task_names(), default="datacube", help="model to tune (default: datacube)")
    p.add_argument("--trials", type=int, required=True, help="trials this process runs (workers on one study add up)")
    p.add_argument("--timeout", type=float, metavar="S", help="stop starting new trials after S seconds")
    p.add_argument("--study", metavar="NAME", help="study name (default: <model>-tune)")
    p.add_argument("--resume", action="store_true", help="continue (or join) an existing study of that name")
    p.add_argument("--storage", metavar="URL", help="study database URL (default: $ASTROBIO_REGISTRY_URL or the registry's SQLite file)")
    p.add_argument("--config", metavar="FILE", help="YAML training config the trials start from")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config option (repeatable)")
    p.add_argument("--space", metavar="FILE", help="YAML search-space overrides (see below)")
    p.add_argument("--output-dir", metavar="DIR", help="study folder (default: runs/<study>)")
    p.add_argument("--seed", type=int, help="sampler seed (give each worker of one study its own)")
    p.add_argument("--heartbeat", type=int, metavar="S", help="seconds between a trial's heartbeats; a trial silent for "
                   "4x as long (its process died) is marked failed and re-queued once (default: 30)")
    p.add_argument("--no-default", action="store_true", help="do not train the default config for the comparison")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _run(args: argparse.Namespace) -> Any:
    from ..train.config import load_yaml, parse_set
    from .space import load_space
    from .study import HEARTBEAT_S, require_optuna, tune

    optuna = require_optuna()

    layers = ([load_yaml(args.config)] if args.config else []) + [parse_set(args.set)]
    beat = args.heartbeat or HEARTBEAT_S
    sampler = optuna.samplers.TPESampler(seed=args.seed) if args.seed is not None else None
    return tune(args.model, args.trials, timeout=args.timeout, study=args.study, storage=args.storage, resume=args.resume,
                overrides=layers, space=load_space(args.space) if args.space else None, output_dir=args.output_dir,
                sampler=sampler, heartbeat=(beat, 4 * beat), compare_default=not args.no_default)


def main(argv: Sequence[str] | None = None, prog: str = "astrobio tune") -> int:
    args = build_parser(prog).parse_args(argv)
    log_to_console(logging.DEBUG if args.verbose else logging.INFO)

    def run() -> int:
        result = _run(args)
        print(result.table)
        print(f"outputs: {result.study_dir} (best.yaml, summary.txt, summary.json, plots, trial-<n>/)")
        return 0

    return run_command(run)

if __name__ == "__main__":
    raise SystemExit(main())
