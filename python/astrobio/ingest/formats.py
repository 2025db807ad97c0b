"""Source formats: one registry maps a format's name to its request model (pydantic), its
ingest function and the store kind it writes. `astrobio ingest <format>` (its subcommands and
flags), the REST collect bodies (`POST /api/v1/datasets/collect`, a union discriminated by
"format" whose OpenAPI schema lists each format's fields) and the registry's collect are all
generated from it: none of them names a format.

A third party adds a format with

    from astrobio.ingest.formats import SourceFormat, SourcePath, register_format
    class MyRequest(pydantic.BaseModel):          # the options; source files typed SourcePath
        source: SourcePath
    register_format(SourceFormat("mine", kind="table", request=MyRequest, ingest=my_ingest))

or, for an installed package, an entry point in the group `astrobio.source_formats`
(`mine = "mypkg.formats:FORMAT"`), loaded the first time a name is not found. See
docs/add-a-source-format.md.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._plugins import Plugins, check_plugin_name
from ..errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "IngestContext", "SourceFormat", "SourcePath", "StrictRequest", "field_types", "format_names", "get_format",
           "number_arms", "pairs", "parse_request", "register_format", "sources_of", "unregister_format", "with_sources"]

ENTRY_POINT_GROUP = "astrobio.source_formats"


class _SourceMarker:
    """Marks a request field as a source path (the server confines it to its source roots)."""

    def __repr__(self) -> str:
        return "SourcePath"


SOURCE = _SourceMarker()
#: A request field naming a source file or folder: the REST collect refuses one outside the
#: server's source roots, and the ingest function receives it resolved.
SourcePath = Annotated[str, Field(min_length=1, max_length=4096, description="path of a source file or folder"), SOURCE]


def field_types(hint: Any) -> list[Any]:
    """The types a field may take: Annotated metadata dropped, unions flattened."""
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [arm for a in typing.get_args(hint) for arm in field_types(a)]
    return [hint]


def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields under every key the input may use: name, alias, alias choices."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        keys = [name, info.alias, alias, *(getattr(alias, "choices", None) or ())]
        out.update({k: info.annotation for k in keys if isinstance(k, str) and k})
    return out


def number_arms(hint: Any) -> list[type]:
    """The number types (int, float) a field of `hint` takes, [] when it takes no number or
    also a string (then a string is no stand-in for a number)."""
    arms = field_types(hint)
    if str in arms:
        return []
    return [a for a in (int, float) if a in arms]


def _not_numbers(hint: Any, value: Any, loc: str) -> list[str]:
    """Where in `value` a JSON string or true/false stands for a number of `hint`: lax pydantic
    would read "3" as 3 and true as 1, against the request's own JSON schema ("type": "number")."""
    arms = field_types(hint)
    if isinstance(value, (bool, str)):
        return [loc] if number_arms(hint) and type(value) not in arms else []
    if isinstance(value, dict):
        models = [a for a in arms if isinstance(a, type) and issubclass(a, BaseModel)]
        maps = [a for a in arms if typing.get_origin(a) in (dict, Mapping)]
        if len(models) + len(maps) != 1:
            return []
        if models:
            fields = _fields_by_key(models[0])
            return [b for k, v in value.items() if k in fields for b in _not_numbers(fields[k], v, f"{loc}.{k}")]
        inner = typing.get_args(maps[0])[-1] if typing.get_args(maps[0]) else Any
        return [b for k, v in value.items() for b in _not_numbers(inner, v, f"{loc}.{k}")]
    if isinstance(value, (list, tuple)):
        seqs = [a for a in arms if typing.get_origin(a) in (list, tuple)]
        if len(seqs) != 1:
            return []
        args = typing.get_args(seqs[0])
        fixed = typing.get_origin(seqs[0]) is tuple and args and args[-1] is not Ellipsis
        hints = list(args) if fixed else [args[0] if args else Any] * len(value)
        return [b for i, (h, v) in enumerate(zip(hints, value)) for b in _not_numbers(h, v, f"{loc}[{i}]")]
    return []


class StrictRequest(BaseModel):
    """A base for request models: unknown fields are refused, aliases and names both accepted,
    and a number is a number (not "3" or true, which lax pydantic would take as 3 and 1): the
    REST body is held to its JSON schema, and `astrobio ingest` converts its flags first."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            bad = _not_numbers(cls, data, "")
            if bad:
                raise ValueError(f"{', '.join(b.lstrip('.') for b in bad)}: a number is expected (not a string or true/false)")
        return data


@dataclass(frozen=True)
class IngestContext:
    """What an ingest function is told besides its request: `dataset`, the registry dataset
    the store becomes a version of ("" from `astrobio ingest`), and `caller` ("cli" or "api"),
    which only sets the syntax of hints in error messages."""

    dataset: str = ""
    caller: str = "api"


#: ingest(request, out, context) -> where the store was written (`out`)
IngestFunction = Callable[[Any, "Path | str", IngestContext], "Path | str"]


@dataclass(frozen=True)
class SourceFormat:
    """One source format. `request` is a pydantic model of its options (source files typed
    `SourcePath`); `ingest` writes a store of kind `kind` (`astrobio.stores.kinds`) at `out`.
    `add_arguments(parser)` / `to_values(args)` optionally replace the CLI flags generated from
    `request` (one flag per field) with the format's own syntax. `precheck(request, context)`,
    optional, is a quick look at the sources that raises ConfigError when the request cannot give
    a store (e.g. its filters select nothing): the REST collect runs it before accepting the
    collect, so such a request is a 422, not a failed job."""

    name: str
    kind: str
    request: type[BaseModel]
    ingest: IngestFunction
    help: str = ""
    examples: tuple[str, ...] = ()
    add_arguments: Callable[[Any], None] | None = field(default=None, compare=False)
    to_values: Callable[[Any], dict[str, Any]] | None = field(default=None, compare=False)
    precheck: Callable[[Any, IngestContext], Any] | None = field(default=None, compare=False)


_BUILTIN: dict[str, str] = {
    "climate": "astrobio.ingest.climate_format:FORMAT",
    "catalogue": "astrobio.ingest.catalogue:FORMAT",
    "metabolic": "astrobio.ingest.metabolic:FORMAT",
    "observations": "astrobio.ingest.observations:FORMAT",
}


def _load_format(name: str, obj: Any) -> SourceFormat:
    if not isinstance(obj, SourceFormat) or obj.name != name:
        raise ConfigError(f"the source format registered as {name!r} is not a SourceFormat called {name!r}")
    return obj


FORMATS: Plugins[SourceFormat] = Plugins("source format", ENTRY_POINT_GROUP, _BUILTIN, _load_format,
                                         known="known formats", adder="astrobio.ingest.formats.register_format")


def register_format(fmt: SourceFormat) -> SourceFormat:
    """Register (or replace) a source format under its name; returns it."""
    if not isinstance(fmt, SourceFormat):
        raise ConfigError(f"register_format takes a SourceFormat, got {type(fmt).__name__}")
    check_plugin_name(fmt.name, "source format")
    if not (isinstance(fmt.request, type) and issubclass(fmt.request, BaseModel)):
        raise ConfigError(f"source format {fmt.name!r}: request must be a pydantic model class")
    reserved = {"format", "dataset"} & set(fmt.request.model_fields)
    if reserved:
        raise ConfigError(f"source format {fmt.name!r}: request fields {sorted(reserved)} are reserved for the collect body")
    FORMATS.register(fmt.name, fmt)
    return fmt


def unregister_format(name: str) -> None:
    """Forget a registered format (a built-in one goes back to its built-in definition)."""
    FORMATS.unregister(name)


def format_names() -> list[str]:
    """Registered format names (built-in, registered, installed entry points), sorted."""
    return FORMATS.names()


def get_format(name: str) -> SourceFormat:
    """The format called `name`; ConfigError (one line, naming the known ones) otherwise."""
    return FORMATS.get(name)


def pairs(items: Any, what: str) -> dict[str, str]:
    """["a=x", "b=y"] -> {"a": "x", "b": "y"} (the CLI's NAME=VALUE syntax); ConfigError otherwise."""
    out = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def parse_request(fmt: SourceFormat, values: Mapping[str, Any]) -> BaseModel:
    """`values` validated into `fmt`'s request model; ConfigError naming the first bad field."""
    try:
        return fmt.request.model_validate(dict(values))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "request"
        raise ConfigError(f"{fmt.name}: {where}: {err['msg']}") from None


def _is_source(hint: Any) -> bool:
    return typing.get_origin(hint) is Annotated and any(m is SOURCE for m in typing.get_args(hint)[1:])


def _source_shape(info: Any) -> str | None:
    """'one', 'map' or 'list' when the field holds source paths (SourcePath, dict[_, SourcePath],
    list[SourcePath], optionally | None); None otherwise."""
    if any(m is SOURCE for m in info.metadata):
        return "one"
    hint = info.annotation
    if _is_source(hint):
        return "one"
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    for a in args:
        origin, inner = typing.get_origin(a), typing.get_args(a)
        if origin is dict and inner and _is_source(inner[-1]):
            return "map"
        if origin is list and inner and _is_source(inner[0]):
            return "list"
    return None


def sources_of(request: BaseModel) -> dict[str, str]:
    """Field path -> source path of every source the request names ("runs.a", "source",
    "files.0"), from the fields typed `SourcePath`."""
    out: dict[str, str] = {}
    for name, info in type(request).model_fields.items():
        shape, value = _source_shape(info), getattr(request, name)
        if shape is None or value is None:
            continue
        if shape == "one":
            out[name] = value
        elif shape == "map":
            out.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            out.update({f"{name}.{i}": v for i, v in enumerate(value)})
    return out


def with_sources(request: BaseModel, resolved: Mapping[str, Path]) -> BaseModel:
    """A copy of `request` whose source paths are replaced by `resolved` (keys as `sources_of`)."""
    update: dict[str, Any] = {}
    for name, info in type(request).model_fields.items():
        shape, value = _source_shape(info), getattr(request, name)
        if shape is None or value is None:
            continue
        if shape == "one":
            update[name] = str(resolved.get(name, value))
        elif shape == "map":
            update[name] = {k: str(resolved.get(f"{name}.{k}", v)) for k, v in value.items()}
        else:
            update[name] = [str(resolved.get(f"{name}.{i}", v)) for i, v in enumerate(value)]
    return request.model_copy(update=update)
