"""`python -m astrobio.train` (also `astrobio train`): flags fill the typed config, errors are
one line and a non-zero exit."""

from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

from .._cli import log_to_console, run_command
from ..errors import ConfigError
from ._stack import lightning_module
from .config import TrainConfig, load_yaml, nest_dotted, parse_set
from .resolve import resolve
from .tasks import Ensembles, Folds, RunsOutcome, get_task, task_names

__all__ = ["build_parser", "build_config", "main"]

EXAMPLES = """examples:
  python -m astrobio.train                                  # default model on the default climate dataset
  python -m astrobio.train --model graph                    # graph VAE: link prediction on the metabolic networks
  python -m astrobio.train --model language                 # LoRA MiniLM: reaction name -> subsystem
  python -m astrobio.train --model multimodal               # fusion of climate cube + planet parameters
  python -m astrobio.train --mode full --output-dir runs/full   # every component in phases, then fusion
  python -m astrobio.train --mode full --resume runs/full   # skip finished phases, continue the interrupted one
  python -m astrobio.train --kfold 5 --output-dir runs/kfold   # k-fold by planet: mean and spread of the skill
  python -m astrobio.train --ensemble 3 --output-dir runs/ens  # three seeds, evaluated by their mean prediction
  python -m astrobio.train --max-epochs 5 --batch-size 16 --seed 1
  python -m astrobio.train --store my_climate.zarr --output-dir runs/exp1 --physics-constraints
  python -m astrobio.train --config exp.yaml --set optim.lr=0.001 --set trainer.patience=4
  python -m astrobio.train --resume runs/exp1               # continue exactly from runs/exp1/checkpoints/last.ckpt
  torchrun --nproc_per_node 4 -m astrobio.train --devices 4 --output-dir runs/ddp
  torchrun --nnodes 2 --nproc_per_node 8 ... -m astrobio.train --devices 8 --num-nodes 2 --output-dir runs/big

config file (YAML; every key optional, see astrobio/train/config.py):
  model:   {name: graph, options: {hidden: 64, latent: 32, kl_anneal_epochs: 50}}   # the named model's options
           (--mode full: per model, {graph: {hidden: 64}, multimodal: {embed: 64}, language: {r: 8}})
  optim:   {lr: 0.002, accumulate: 2, grad_clip: 1.0}
  trainer: {max_epochs: 60, patience: 10, precision: auto, checkpoint_every_n_epochs: 10}
"""

# flag -> config path
FLAGS = {
    "model": "model.name", "max_epochs": "trainer.max_epochs", "batch_size": "data.batch_size",
    "devices": "trainer.devices", "num_nodes": "trainer.num_nodes", "output_dir": "trainer.output_dir",
    "seed": "trainer.seed", "store": "data.location", "data": "data.location", "precision": "trainer.precision",
    "accelerator": "trainer.accelerator", "physics_constraints": "model.options.physics.enabled",
}


def build_parser(prog: str = "python -m astrobio.train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Train a model on an astrobio store: checkpoints, exact resume, early stopping, TensorBoard, "
                    "DDP via torchrun; ends with a summary table and plots in the run folder.")
    p.add_argument("--model", choices=task_names(), help="model to train (default: datacube)")
    p.add_argument("--mode", choices=["train", "full"], default="train",
                   help="train: one model; full: every component in phases (each encoder, then fusion) into "
                        "<output-dir>/phases/<name>/, resumable at phase boundaries")
    p.add_argument("--kfold", type=int, metavar="K",
                   help="models whose task has run_kfold (datacube): evaluate by k-fold over planets (each planet tested "
                        "once; K runs in <output-dir>/fold-<i>, "
                        "rerun to continue) and report the mean and spread of the skill over both baselines")
    p.add_argument("--ensemble", type=int, metavar="N",
                   help="models whose task has run_ensemble (datacube): train N seeds (<output-dir>/member-<i>, rerun to "
                        "continue) and evaluate their mean "
                        "prediction beside both baselines and each member")
    p.add_argument("--config", metavar="FILE", help="YAML config file")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--batch-size", type=int, help="batch size per device")
    p.add_argument("--devices", type=int, help="devices (processes) per node; >1 uses DDP")
    p.add_argument("--num-nodes", type=int)
    p.add_argument("--resume", metavar="PATH", help="checkpoint file or run folder to continue exactly")
    p.add_argument("--output-dir", metavar="DIR", help="run folder (default: runs/<model>-<timestamp>)")
    p.add_argument("--physics-constraints", action="store_const", const=True, default=None,
                   help="datacube: add the physics loss terms (non-negative humidity, dry static stability; "
                        "model.options.physics)")
    p.add_argument("--seed", type=int)
    p.add_argument("--data", metavar="LOCATION", help="store to train on: a path, an s3:// URL or a registered version NAME@vN "
                   "(astrobio registry list), of the model's data kind (default: the default dataset's)")
    p.add_argument("--store", metavar="PATH", help="the same as --data (its older name)")
    p.add_argument("--precision", choices=["auto", "32-true", "bf16-mixed", "16-mixed"])
    p.add_argument("--accelerator", choices=["auto", "cpu", "gpu"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config option, e.g. optim.lr=0.001 (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def override_layers(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The user's settings in precedence order: --config file, --set, flags."""
    layers = [load_yaml(args.config)] if args.config else []
    layers.append(parse_set(args.set))
    flags: dict[str, Any] = {}
    for name, path in FLAGS.items():
        value = getattr(args, name, None)
        if value is not None:
            flags[path] = value
    layers.append(nest_dotted(flags))
    return layers


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The model's defaults (or the resumed checkpoint's config) < --config < --set < flags."""
    return resolve(override_layers(args), resume=args.resume)


def main(argv: Sequence[str] | None = None, prog: str = "python -m astrobio.train") -> int:
    args = build_parser(prog).parse_args(argv)
    log_to_console(logging.DEBUG if args.verbose else logging.INFO)
    return run_command(lambda: _run(args))


def _run_of_runs(cfg: TrainConfig, flag: str, n: int) -> RunsOutcome:
    """`--kfold K` / `--ensemble N` through the model's task, when its task opts in (`Folds`, `Ensembles`)."""
    lightning_module("trainer")  # Lightning through its one door before the task imports it
    task = get_task(cfg.model.name)
    if flag == "kfold":
        if not isinstance(task, Folds):
            raise ConfigError(f"--kfold: model {cfg.model.name!r} has no k-fold evaluation (its task has no run_kfold; "
                              "see docs/add-a-model.md)")
        return task.run_kfold(cfg, n)
    if not isinstance(task, Ensembles):
        raise ConfigError(f"--ensemble: model {cfg.model.name!r} has no seed ensembles (its task has no run_ensemble; "
                          "see docs/add-a-model.md)")
    return task.run_ensemble(cfg, n)


def _run(args: argparse.Namespace) -> int:
    """The command the flags ask for; its exit status."""
    if args.kfold is not None or args.ensemble is not None:  # several runs, each kept on a rerun
        flag, what, other = ("kfold", "folds", "ensemble") if args.kfold is not None else ("ensemble", "members", "kfold")
        if args.mode == "full" or args.resume or getattr(args, other) is not None:
            raise ConfigError(f"--{flag} runs its own {what} (rerun the same command to continue); drop --mode full, "
                              f"--resume and --{other}")
        outcome = _run_of_runs(build_config(args), "kfold" if args.kfold is not None else "ensemble",
                               args.kfold if args.kfold is not None else args.ensemble)
        print(outcome.table)
        print(f"outputs: {outcome.run_dir} ({outcome.outputs})")
        return 0
    if args.mode == "full":
        result = lightning_module("pipeline").run_full(override_layers(args), resume=args.resume)
        print(result.table)
        print(f"outputs: {result.run_dir} (summary.txt, summary.json, phases/<name>/ with each phase's run)")
        return 0
    train = lightning_module("trainer").train
    result = train(build_config(args), resume=args.resume)
    if result.table:
        print(result.table)
        print(f"outputs: {result.run_dir} (summary.txt, summary.json, loss_curves.png, plots, checkpoints/, tensorboard/)")
    return 0
