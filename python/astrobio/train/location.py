"""The data a run trains on: `data.location` (a path, an s3:// URL or a registered version
`name@vN`) resolved through the store kind the task reads (`Task.data_kind`), and the store's
identity (kind, path, content digest) the runner records in every checkpoint and summary, so
no task copies it by hand and a resume on other data is refused for every task.

Names no kind: the kind comes from the task, the checks from the kinds' registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..stores import kind_of, read_group_manifest
from ..stores._remote import store_location
from ..stores.kinds import StoreKind, get_kind

__all__ = ["Registered", "is_data_ref", "resolve_location", "store_identity", "task_kind"]


@dataclass
class Registered:
    """A registered version the run trains on: the registry's load info and the lineage record."""

    ref: str
    uri: str
    digest: str
    kind: str
    summary: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)


def is_data_ref(value: str | None) -> bool:
    """True when `value` names a registered version ('name@vN') rather than a path or URL."""
    return bool(value) and "@" in str(value) and "/" not in str(value) and "://" not in str(value)


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
