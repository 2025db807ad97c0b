"""`astrobio predict` and `astrobio evaluate`: use a trained climate emulator from the command
line. The emulator (torch, the trainer's task) loads only when one of them runs."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from ..errors import ConfigError

__all__ = ["add_commands"]


def _params(text: str) -> dict[str, str]:
    """'k=v,k=v' -> {k: v}."""
    out = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--params must look like name=value,name=value; got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _warn_lines() -> Any:
    """Warnings as one stderr line each (`astrobio: warning: ...`), not Python's two-line format."""
    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        print(f"astrobio: warning: {message}", file=sys.stderr)
    return show


def cmd_predict(args: argparse.Namespace) -> int:
    from .fields import write_dataset
    from .load import load_emulator

    given = [x for x in (args.planet, args.params, args.catalogue) if x]
    if len(given) != 1:
        raise ConfigError("name the planets one way: --planet NAME, --params k=v,... or --catalogue TABLE [--where QUERY]")
    emulator = load_emulator(args.run, store=args.train_store)
    warnings.showwarning = _warn_lines()
    ds = emulator.predict(args.planet, params=_params(args.params) if args.params else None, catalogue=args.catalogue,
                          where=args.where)
    out = write_dataset(ds, args.out)
    members = f", mean and spread of {len(emulator.members)} members" if emulator.ensemble else ""
    print(f"wrote {out}: {ds.sizes['planet']} planet(s) ({', '.join(map(str, ds['planet'].values[:5]))}"
          f"{', ...' if ds.sizes['planet'] > 5 else ''}), variables {', '.join(v.name for v in emulator.variables)}{members}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_store
    from .load import load_emulator

    emulator = load_emulator(args.run, store=args.train_store)
    result = evaluate_store(emulator, args.store, split=args.split, out_dir=args.out, again=args.again)
    print(result.table)
    if result.files:
        print("wrote " + ", ".join(str(p) for p in result.files))
    return 0


def add_commands(sub: Any) -> None:
    """The `predict` and `evaluate` subcommands of `astrobio`."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("predict", help="predict planets' climates with a trained emulator (CF NetCDF or zarr)", formatter_class=fmt,
                       epilog="examples:\n  astrobio predict runs/base --planet earth --out earth.nc\n"
                              "  astrobio predict runs/base --params instellation=0.9,star_teff=3300,rotation_period=synchronous,"
                              "orbital_period=12 --out p.nc\n"
                              "  astrobio predict runs/ens --catalogue planets.zarr --where 'pl_rade < 1.6' --out many.zarr")
    p.add_argument("run", help="a training run folder (or ensemble folder, or .ckpt file)")
    p.add_argument("--out", required=True, help="output file: .nc (NetCDF4) or .zarr")
    p.add_argument("--planet", help="a planet name: earth (or earth_s0.9, earth_s1.1) or a planet of the ingested catalogue")
    p.add_argument("--params", help="name=value,...: instellation, star_teff, rotation_period (days, or synchronous with "
                                    "orbital_period), radius, gravity, surface_pressure")
    p.add_argument("--catalogue", help="a planet catalogue table store (path or name@vN): predict every row")
    p.add_argument("--where", help="with --catalogue: a pandas query on its columns, e.g. \"pl_rade < 1.6\"")
    p.add_argument("--train-store", help="the run's training store, when it moved (same content digest)")
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="score a trained emulator on a cube store beside the baselines", formatter_class=fmt,
                       epilog="examples:\n  astrobio evaluate runs/base --store ~/.cache/astrobio/default/climate.zarr\n"
                              "  astrobio evaluate runs/base --store my_gcm_runs.zarr --split all\n"
                              "  astrobio evaluate runs/ens --store climate@v2 --out eval/\n"
                              "  astrobio evaluate runs/base --store untouched.zarr --out eval/   # once per model (ledger)")
    e.add_argument("run", help="a training run folder (or ensemble folder, or .ckpt file)")
    e.add_argument("--store", required=True, help="a cube store path or URL, or a registered name@vN")
    e.add_argument("--split", default=None, help="test, val, train or all (default: the run's held-out split on its own "
                                                 "store; every sample of any other store)")
    e.add_argument("--out", help="folder for evaluation.json and the plots (default: none written)")
    e.add_argument("--train-store", help="the run's training store, when it moved (same content digest)")
    e.add_argument("--again", action="store_true", help="an untouched store: evaluate a checkpoint already evaluated on it "
                                                        "(recorded in $ASTROBIO_HOME/untouched-ledger.jsonl like the first)")
    e.set_defaults(func=cmd_evaluate)
