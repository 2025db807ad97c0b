"""Subcommands `astrobio registry|keys`, for `astrobio.cli.build_parser` to mount with
`add_commands(sub)`. Errors are AstrobioError (the CLI prints one line and exits non-zero)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError, first_line
from ..stores.location import store_location

__all__ = ["add_commands", "cmd_registry", "cmd_keys"]

FMT = argparse.RawDescriptionHelpFormatter


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _print(obj: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    print(json.dumps(obj, indent=2, default=str) if as_json else render(obj))


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Database driver errors become one-line ConfigErrors (never a traceback)."""
    def run(args: argparse.Namespace) -> int:
        from . import require_extra

        require_extra()
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return fn(args)
        except SQLAlchemyError as e:
            from .._redact import redact

            raise ConfigError(f"registry database error ({redact(first_line(getattr(e, 'orig', None) or e))})") from None
    return run


def _show(v: dict[str, Any]) -> str:
    lines = [f"{v['ref']}  {v['status']}  {v['kind']}", f"  uri      {v['uri']}", f"  digest   {v['digest']}",
             f"  created  {v['created']}", f"  quality  {'passed' if v['quality_success'] else 'failed' if v['quality_success'] is False else '-'}"]
    if v.get("error"):
        lines.append(f"  problem  {v['error']}")
    for split, c in v["splits"].items():
        lines.append(f"  split    {split}: {c['runs']} runs, {c['samples']} samples")
    runs = v.get("runs") or []
    lines.append(f"  runs     {len(runs)} trained on this version")
    lines += [f"    {r['created']}  {r['model']:<10} {r['run_dir']}" for r in runs]
    return "\n".join(lines)


@_guard
def cmd_registry(args: argparse.Namespace) -> int:
    from .core import open_registry, parse_ref

    reg = open_registry()
    if args.action == "add":
        if not args.target or not args.name:
            raise ConfigError("usage: astrobio registry add STORE_PATH_OR_URL --name NAME")
        v = reg.register(store_location(args.target), args.name, description=args.description)
        _print(v, args.json, _show)
    elif args.action == "list":
        if args.target:
            ds = reg.dataset(parse_ref(args.target)[0])
            _print(ds, args.json, lambda d: _table(d["versions"], ["ref", "status", "kind", "quality_success", "created", "digest"]))
        else:
            _print(reg.datasets(), args.json, lambda rows: _table(rows, ["name", "versions", "latest_ready", "created", "description"]))
    elif args.action == "show":
        if not args.target:
            raise ConfigError("usage: astrobio registry show NAME@vN")
        _print(reg.version(args.target), args.json, _show)
    elif args.action == "quality":
        _print(reg.quality(args.target or ""), args.json,
               lambda q: "\n".join([f"{'passed' if q['success'] else 'FAILED'}: {q['statistics']['successful_expectations']}"
                                    f"/{q['statistics']['evaluated_expectations']} expectations"]
                                   + [f"  {'ok  ' if r['success'] else 'FAIL'} {r['expectation']} {json.dumps(r['details'].get('variable', ''))}"
                                      for r in q["results"]]))
    else:  # retire
        _print(reg.retire(args.target or ""), args.json, _show)
    return 0


@_guard
def cmd_keys(args: argparse.Namespace) -> int:
    from .core import open_registry
    from .keys import create_key, list_keys, revoke_key

    reg = open_registry()
    if args.action == "create":
        key, rec = create_key(reg, args.name or "", "write" if args.write else "read")
        if args.json:
            print(json.dumps({**rec, "key": key}))
        else:
            print(key)
            print(f"key {rec['key_id']} ({rec['name']}, scopes {rec['scopes']}); shown only now: store it safely", file=sys.stderr)
    elif args.action == "list":
        _print(list_keys(reg), args.json, lambda rows: _table(rows, ["key_id", "name", "scopes", "created", "revoked"]))
    else:
        n = revoke_key(reg, args.name or "")
        print(f"revoked {n} key{'s' if n != 1 else ''}")
    return 0


def add_commands(sub: Any) -> None:
    """Mount `registry` and `keys` on the `astrobio` subparsers."""
    r = sub.add_parser("registry", help="versioned datasets: add, list, show, quality, retire", formatter_class=FMT,
                       epilog="examples:\n  astrobio registry add ~/data/climate.zarr --name climate\n"
                              "  astrobio registry add s3://bucket/climate-2026.zarr --name climate\n  astrobio registry list\n"
                              "  astrobio registry list climate\n  astrobio registry show climate@v2 --json\n"
                              "  astrobio registry quality climate@v2\n  astrobio registry retire climate@v1")
    r.add_argument("action", choices=["add", "list", "show", "quality", "retire"])
    r.add_argument("target", nargs="?", help="add: STORE_PATH or s3:// URL; list: [NAME]; show/quality/retire: NAME@vN")
    r.add_argument("--name", help="add: dataset name")
    r.add_argument("--description", default="", help="add: description of a new dataset")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=cmd_registry)

    k = sub.add_parser("keys", help="API keys of the REST service: create, list, revoke", formatter_class=FMT,
                       epilog="examples:\n  astrobio keys create notebook\n  astrobio keys create pipeline --write\n"
                              "  astrobio keys list\n  astrobio keys revoke notebook")
    k.add_argument("action", choices=["create", "list", "revoke"])
    k.add_argument("name", nargs="?", help="create: key name; revoke: key id or name")
    k.add_argument("--write", action="store_true", help="create: allow collect (write scope) besides reads")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_keys)
