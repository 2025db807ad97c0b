"""The `astrobio` command line. Every command has --help with an example; errors print one
line and exit non-zero."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Sequence

from . import simulate
from ._cli import run_command
from .datasets import PARTS, build_default, data_home
from .emulator.cli import add_commands as add_emulator_commands
from .registry.cli import add_commands as add_registry_commands
from .serve.cli import add_command as add_serve_command
from .errors import ConfigError
from .ingest.cli import add_command as add_ingest_command
from .ingest.climate_format import split_arg
from .stores.location import store_location
from .validate import check_components, check_store

__all__ = ["main"]


def cmd_datasets(args: argparse.Namespace) -> int:
    if args.action == "list":
        for part in PARTS:
            print(part)
        print(f"data home: {data_home()}")
        return 0
    if args.action == "build":
        if args.name != "default":
            raise ConfigError(f"unknown dataset {args.name!r}; available: default")
        parts = args.parts.split(",") if args.parts else None
        built = build_default(parts, root=Path(args.root) if args.root else None, progress=not args.quiet)
        for part, paths in built.items():
            for p in paths:
                print(f"{part:<11} {p}")
        return 0
    if args.action == "pack-climate":
        split = split_arg(args.split)  # None: the campaign's documented held-out rule
        if args.untouched and not args.store:
            raise ConfigError("--untouched packs the untouched evaluation runs into a store of their own: add --store PATH")
        # with --store (your own runs -> a store to evaluate an emulator on), never the package's own pack
        pack_dir = Path(args.out) if args.out else Path(f"{args.store}.pack") if args.store else _pack_dir()
        npz, js = simulate.pack_results(Path(args.name), pack_dir, split, untouched=args.untouched)
        print(f"wrote {npz} ({npz.stat().st_size / 1e6:.1f} MB) and {js}")
        if args.store:
            from .datasets.climate import build_climate_store

            print(f"wrote {build_climate_store(Path(args.store), pack_dir)}")
        return 0
    raise ConfigError(f"unknown action {args.action!r}")


def _pack_dir() -> Path:
    return Path(str(resources.files("astrobio.datasets") / "data"))


def cmd_validate(args: argparse.Namespace) -> int:
    checks = check_components()
    stores: list[Path | str] = [store_location(p) for p in args.store] or sorted((data_home() / "default").glob("*.zarr"))
    if not stores:  # a fresh machine: the default dataset is built on first use, as for training
        print(f"no stores under {data_home() / 'default'}: building the default dataset first "
              "(astrobio datasets build default; real sources only, about a minute)", file=sys.stderr)
        build_default()
        stores = sorted((data_home() / "default").glob("*.zarr"))
    checks += [check_store(p) for p in stores]
    width = max(len(c.name) for c in checks)
    failed = 0
    for c in checks:
        status = "ok" if c.ok else ("FAIL" if c.required else "missing")
        failed += (not c.ok) and c.required
        print(f"{c.name:<{width}}  {status:<7}  {c.detail}")
    optional_missing = sum(1 for c in checks if not c.ok and not c.required)
    print(f"\n{sum(c.ok for c in checks)} ok, {optional_missing} optional missing, {failed} failed")
    return 1 if failed else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if not args.list and not args.out:
        raise ConfigError("name the results folder with --out DIR")
    if args.extend and not args.campaign:
        raise ConfigError("--extend continues the campaign's unsettled runs: use it with --campaign --out DIR")
    if args.campaign:
        from .simulate.campaign import campaign_specs, extend_campaign, run_campaign, untouched_specs

        specs = untouched_specs() if args.untouched else campaign_specs()
        if args.list:
            for spec in specs:
                print(f"{spec.slug:<20} {'synchronous' if spec.synchronous else 'fast':<11} S={spec.instellation_earth:.2f} "
                      f"P={spec.rotation_period_days:.2f} d R={spec.radius_earth:.2f} p={spec.surface_pressure_bar:.2f} bar "
                      f"Teff={spec.star_teff_k:.0f} K")
            return 0
        if args.extend:
            status = extend_campaign(specs, args.out, years=args.extend, jobs=args.jobs)
        else:
            status = run_campaign(specs, args.out, jobs=args.jobs, force=args.force)
        failed = sorted(r for r, s in status.items() if s == "failed")
        print(f"campaign: {len(status) - len(failed)} runs finished, {len(failed)} failed"
              + (f" ({', '.join(failed)}; see <run>/failed.json)" if failed else ""))
        print(f"next: astrobio datasets pack-climate {args.out}")
        return 0
    specs = simulate.default_planet_specs()
    if args.list:
        for spec in specs:
            print(spec.slug)
        return 0
    if not args.all:
        wanted = {n.lower() for n in args.planet}
        specs = [s for s in specs if s.slug in wanted or s.name.lower() in wanted]
        if not specs:
            raise ConfigError("no planet matched; use --all, --campaign or --planet with one of: "
                              + ", ".join(s.slug for s in simulate.default_planet_specs()))
    for spec in specs:
        out = Path(args.out) / spec.slug
        if (out / "result.json").exists() and not args.force:
            print(f"{spec.slug}: already done ({out})")
            continue
        result = simulate.run_planet(spec, out / "work", years=args.years)
        simulate.save_result(result, out)
        print(f"{spec.slug}: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="astrobio", description="astrobio: verified data and training for astrobiology ML.",
                                epilog="example:\n  astrobio datasets build default\n  astrobio validate", formatter_class=fmt)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("datasets", help="build or list the embedded default dataset", formatter_class=fmt,
                       epilog="examples:\n  astrobio datasets build default\n  astrobio datasets build default --parts climate\n"
                              "  astrobio datasets pack-climate gcm_campaign          # held-out planets by the documented rule\n"
                              "  astrobio datasets pack-climate gcm_runs --split test=trappist-1_e --split val=toi-700_d\n"
                              "  astrobio datasets pack-climate gcm_runs --split test=earth --store earth_gcm.zarr   # for astrobio evaluate\n"
                              "  astrobio datasets pack-climate gcm_untouched --untouched --store untouched.zarr   # evaluated once per model")
    d.add_argument("action", choices=["build", "list", "pack-climate"])
    d.add_argument("name", nargs="?", default="default", help="dataset name (build) or results folder (pack-climate)")
    d.add_argument("--parts", help="comma-separated parts to build (default: all)")
    d.add_argument("--root", help="data home (default: $ASTROBIO_HOME or ~/.cache/astrobio)")
    d.add_argument("--split", action="append", default=[], help="pack-climate: SPLIT=run,run (repeatable; default: the campaign's held-out rule, docs/climate-campaign.md)")
    d.add_argument("--out", help="pack-climate: output folder (default: the package's data folder)")
    d.add_argument("--store", help="pack-climate: also build a cube store from the pack (e.g. your own simulate runs, to "
                                   "evaluate an emulator on: astrobio evaluate RUN --store PATH)")
    d.add_argument("--untouched", action="store_true", help="pack-climate: the untouched evaluation campaign (every settled run "
                                                            "in test, the store marked untouched; needs --store)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_datasets)

    v = sub.add_parser("validate", help="check components and run a full integrity scan of stores", formatter_class=fmt,
                       epilog="examples:\n  astrobio validate\n  astrobio validate --store my.zarr\n"
                              "  astrobio validate --store s3://bucket/climate.zarr")
    v.add_argument("--store", action="append", default=[], help="store to scan (repeatable; default: the default dataset, built first on a fresh machine)")
    v.set_defaults(func=cmd_validate)

    add_ingest_command(sub)  # one subcommand per registered source format (astrobio.ingest.formats)

    s = sub.add_parser("simulate", help="run the ExoPlaSim GCM for catalogue planets (hours)", formatter_class=fmt,
                       epilog="examples:\n  astrobio simulate --campaign --out gcm_campaign --jobs 2   # the default dataset's runs\n"
                              "  astrobio simulate --campaign --extend 2 --out gcm_campaign   # continue unsettled runs\n"
                              "  astrobio simulate --campaign --list\n"
                              "  astrobio simulate --planet trappist-1_e --years 2 --out gcm_runs")
    s.add_argument("--campaign", action="store_true",
                   help="the default dataset's designed campaign (catalogue planets + Latin hypercube; resumable)")
    s.add_argument("--untouched", action="store_true",
                   help="--campaign: the untouched evaluation planets (own seed, 8 per regime; never used for any choice)")
    s.add_argument("--extend", type=int, default=0, metavar="YEARS",
                   help="--campaign: continue the unsettled runs from their restart files by up to YEARS model years")
    s.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="--campaign: runs at once, one per core")
    s.add_argument("--list", action="store_true", help="list the runs and exit")
    s.add_argument("--planet", action="append", default=[])
    s.add_argument("--all", action="store_true")
    s.add_argument("--years", type=int, default=2)
    s.add_argument("--out", help="results folder (one sub-folder per run)")
    s.add_argument("--force", action="store_true", help="rerun planets that already have results")
    s.set_defaults(func=cmd_simulate)

    add_registry_commands(sub)  # registry, keys (their libraries load on use: astrobio[serve])
    add_serve_command(sub)
    add_emulator_commands(sub)  # predict, evaluate (torch loads on use)

    # `astrobio train ...` is `python -m astrobio.train ...` and `astrobio tune ...` the tuner's
    # own parser; main() hands the arguments over.
    sub.add_parser("train", help="train a model (same as python -m astrobio.train; see astrobio train --help)",
                   add_help=False, formatter_class=fmt, epilog="example:\n  astrobio train --max-epochs 5")
    sub.add_parser("tune", help="tune a model's hyperparameters with optuna (see astrobio tune --help)",
                   add_help=False, formatter_class=fmt, epilog="example:\n  astrobio tune --model datacube --trials 20")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        # Imported only for `astrobio train`: the other commands must work (and `validate` must
        # report it) when torch or Lightning is broken.
        from .train.cli import main as train_main

        return train_main(argv[1:], prog="astrobio train")
    if argv[:1] == ["tune"]:
        from .tune.cli import main as tune_main  # same reason: torch/Lightning load only here

        return tune_main(argv[1:], prog="astrobio tune")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_command(lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())


def console() -> None:
    """The `astrobio` console command: `main()`'s exit status. After Ctrl-C (130) the process ends
    at once: the work has stopped and said so, and tearing down the libraries a command loaded
    (torch, Lightning) would keep the user waiting for seconds more."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise SystemExit(code)
