"""The data a run trains on: `data.location` (a path, an s3:// URL or a registered version
`name@vN`) resolved through the store kind the task reads (`Task.data_kind`), and the store's
identity (kind, path, content digest) the runner records in every checkpoint and summary, so
no task copies it by hand and a resume on other data is refused for every task.

Names no kind: the kind comes from the task, the checks from the kinds' registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..registry import is_data_ref  # light: the registry's libraries load only for name@vN
from ..stores import kind_of, read_group_manifest
from ..stores.location import store_location
from ..stores.kinds import StoreKind, get_kind

__all__ = ["LEGACY_LOCATION_KEYS", "Registered", "is_data_ref", "migrate_data_section", "resolve_location", "store_identity",
           "task_kind"]


#: keys older configs and checkpoints named a store with, and the store kind each named: read by
#: `migrate_data_section` only (`data.ref` named a registered version of any kind)
LEGACY_LOCATION_KEYS = {"store": "cube", "graphs": "graph", "ref": None}


def migrate_data_section(data: Any, data_kind: Callable[[], str | None]) -> Any:
    """The `data` section of one config layer with the older location keys (`store`, `graphs`,
    `ref`; see `LEGACY_LOCATION_KEYS`) folded into `location`. `data.store` and `data.graphs`
    applied only to the models of their kind (a layer may name both, as configs for `--mode
    full` do), so the one of the run's model's data kind (`data_kind()`, asked only then) is
    kept and the other dropped, as before; for a task that declares no kind, a single one is
    kept. `data.ref` (any kind) and an explicit `location` win."""
    if not isinstance(data, Mapping) or not any(k in data for k in LEGACY_LOCATION_KEYS):
        return data
    out = {k: v for k, v in data.items() if k not in LEGACY_LOCATION_KEYS}
    given = {k: data[k] for k in LEGACY_LOCATION_KEYS if data.get(k) is not None}
    if "location" not in out and given:
        if given.get("ref") is not None:
            out["location"] = given["ref"]
        else:
            kind = data_kind()
            mine = [v for k, v in given.items() if LEGACY_LOCATION_KEYS[k] == kind]
            if mine:
                out["location"] = mine[0]
            elif kind is None and len(given) == 1:
                out["location"] = next(iter(given.values()))
    return out


@dataclass
class Registered:
    """A registered version the run trains on: the registry's load info and the lineage record."""

    ref: str
    uri: str
    digest: str
    kind: str
    summary: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)


def task_kind(task: Any) -> StoreKind | None:
    """The kind of store the task reads (`Task.data_kind`); None for a task that declares none
    (then any kind is accepted). An unknown kind is a one-line ConfigError."""
    name = getattr(task, "data_kind", None)
    return get_kind(name) if name else None


def _lineage() -> Any:
    from ..registry import require_extra  # the registry's libraries (astrobio[serve]) load only for name@vN

    require_extra()
    return importlib.import_module("astrobio.registry.lineage")


def _refuse(what: str, kind: str, task: Any, expected: StoreKind) -> ConfigError:
    return ConfigError(f"{what} is a {kind} store; model {task.name!r} reads {expected.name} stores")


def resolve_location(cfg: Any, task: Any) -> Registered | None:
    """With `data.location` naming a registered version: the registry checks its store is still
    the registered one, its kind must be the task's, and `data.location` becomes its URI.
    A path or URL is checked against the task's kind when the task opened it (`store_identity`)."""
    ref = cfg.data.location
    if not is_data_ref(ref):
        return None
    lineage = _lineage()
    info = lineage.load_info(ref)
    expected = task_kind(task)
    if expected is not None and info["kind"] != expected.name:
        raise _refuse(ref, info["kind"], task, expected)
    cfg.data.location = info["uri"]
    return Registered(ref=ref, uri=info["uri"], digest=info["digest"], kind=info["kind"], summary=dict(info.get("summary") or {}),
                      lineage=lineage.lineage_record(ref, info["digest"], info["uri"]))


def store_identity(cfg: Any, task: Any, opened: dict[str, Any] | None) -> dict[str, Any]:
    """{kind, path, content_digest, ...the task's own identity fields} of the store the task
    opened: `data.location` (which `Task.open` sets to the store it chose when none was given).
    A store of another kind than the task reads is refused in one line."""
    extra = dict(opened or {})
    where = cfg.data.location or extra.get("path")
    if not where:
        raise ConfigError(f"model {task.name!r} opened its data but did not say where (set data.location in Task.open)")
    location = store_location(where)
    kind = kind_of(location)
    expected = task_kind(task)
    if expected is not None and kind.name != expected.name:
        raise _refuse(str(location), kind.name, task, expected)
    digest = read_group_manifest(location).get("content_digest")
    return {**extra, "kind": kind.name, "path": str(location), "content_digest": digest}
