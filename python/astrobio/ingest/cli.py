"""`astrobio ingest <format>`: one subcommand per registered source format
(`astrobio.ingest.formats`), its flags generated from the format's request model (one flag per
field) unless the format brings its own syntax (`SourceFormat.add_arguments` / `to_values`).
"""

from __future__ import annotations

import argparse
import typing
from typing import Any, Literal

from ..errors import ConfigError
from ..stores.location import store_location
from .formats import IngestContext, SourceFormat, field_types, format_names, get_format, number_arms, pairs, parse_request

__all__ = ["add_command", "cmd_ingest", "generated_arguments", "generated_values"]


def _base(hint: Any) -> Any:
    """The annotation without Annotated metadata and without `| None` (a union of several
    types is returned as it is)."""
    types_ = [t for t in field_types(hint) if t is not type(None)]
    return types_[0] if len(types_) == 1 else hint


def _flag(name: str, info: Any) -> str:
    return "--" + (info.alias or name).replace("_", "-")


def generated_arguments(parser: argparse.ArgumentParser, fmt: SourceFormat) -> None:
    """One flag per field of `fmt.request`: lists repeat (`--x a --x b`), mappings repeat as
    KEY=VALUE (a list value as KEY=a,b), Literal fields offer their choices, booleans switch on."""
    for name, info in fmt.request.model_fields.items():
        hint = _base(info.annotation)
        origin = typing.get_origin(hint)
        kw: dict[str, Any] = {"dest": f"field_{name}", "help": info.description or ""}
        if origin is Literal:
            kw["choices"] = [str(c) for c in typing.get_args(hint)]
        if hint is bool:
            kw["action"] = "store_true"
        elif origin in (list, dict):
            kw["action"] = "append"
            kw["metavar"] = "KEY=VALUE" if origin is dict else "VALUE"
        if info.is_required():
            kw["required"] = True
        parser.add_argument(_flag(name, info), **kw)


def _number(text: str, types_: list[type], flag: str) -> int | float:
    """`text` as the field's number type (an int where the field takes one)."""
    for t in types_:
        try:
            return t(text)  # type: ignore[no-any-return]
        except ValueError:
            continue
    raise ConfigError(f"{flag}: expected {' or '.join('an integer' if t is int else 'a number' for t in types_)}, got {text!r}")


def generated_values(args: argparse.Namespace, fmt: SourceFormat) -> dict[str, Any]:
    """The request's values from the generated flags (unset flags left to the model's defaults)."""
    values: dict[str, Any] = {}
    for name, info in fmt.request.model_fields.items():
        raw = getattr(args, f"field_{name}", None)
        if raw is None or raw is False:
            continue
        hint = _base(info.annotation)
        if typing.get_origin(hint) is dict:
            inner = _base(typing.get_args(hint)[-1]) if typing.get_args(hint) else str
            raw = pairs(raw, _flag(name, info))
            if typing.get_origin(inner) is list:
                raw = {k: [x for x in v.split(",") if x] for k, v in raw.items()}
        elif isinstance(raw, str) and (numbers := number_arms(info.annotation)):
            raw = _number(raw, numbers, _flag(name, info))
        values[info.alias or name] = raw
    return values


def add_command(sub: Any) -> None:
    """The `ingest` command and one subcommand per registered source format."""
    fmt_help = argparse.RawDescriptionHelpFormatter
    names = format_names()
    examples = [e for n in names for e in get_format(n).examples]
    p = sub.add_parser("ingest", help=f"ingest sources into a store ({', '.join(names)})", formatter_class=fmt_help,
                       epilog="examples:\n" + "\n".join(f"  {e}" for e in examples))
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    for name in names:
        fmt = get_format(name)
        f = formats.add_parser(name, help=fmt.help or f"ingest {name} sources into a {fmt.kind} store", formatter_class=fmt_help,
                               epilog="examples:\n" + "\n".join(f"  {e}" for e in fmt.examples) if fmt.examples else None)
        f.add_argument("--out", required=True, help="where to write the store (a directory or an s3:// URL)")
        if fmt.add_arguments is not None:
            fmt.add_arguments(f)
        else:
            generated_arguments(f, fmt)
    p.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    fmt = get_format(args.format)
    values = fmt.to_values(args) if fmt.to_values else generated_values(args, fmt)
    request = parse_request(fmt, values)
    out = fmt.ingest(request, store_location(args.out), IngestContext(caller="cli"))
    if out is None:
        raise ConfigError(f"source format {fmt.name!r}: its ingest returned no store location")
    print(out)
    return 0
