"""What the registry reads from a store: its kind, digest, splits, provenance and a summary,
and the full check a version must pass to become `ready`.

Everything kind-specific comes from the store's kind (`astrobio.stores.kinds`, found by the
format its manifest declares): this module names no kind. A store is a local directory or an
s3:// URL (registered where it is, never copied).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._fsutil import read_store_file
from ..errors import AstrobioError, ConfigError, DataNotFoundError, IntegrityError, first_line
from ..stores._remote import is_url, read_json, store_location
from ..stores.kinds import get_kind, kind_of_format

__all__ = ["StoreInfo", "read_manifest", "describe", "full_check", "digest_check", "open_by_kind"]


@dataclass
class StoreInfo:
    """What a version records about its store."""

    uri: str
    kind: str
    digest: str
    splits: dict[str, dict[str, int]]
    provenance: dict[str, Any]
    summary: dict[str, Any]
    scan: dict[str, Any] = field(default_factory=dict)   # the kind's scan report (`StoreKind.check`)


def _group_document(path: Path | str) -> Any:
    """The group's parsed zarr.json (FileNotFoundError when absent)."""
    if is_url(path):
        return read_json(str(path), "zarr.json")
    return json.loads(read_store_file(Path(path), Path(path) / "zarr.json"))


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The astrobio manifest of the store at `path`, a directory or an s3:// URL (no data read);
    DataNotFoundError when there is no complete store there."""
    try:
        document = _group_document(path)
    except FileNotFoundError:
        raise DataNotFoundError("no astrobio store (zarr.json is missing)", path=str(path), hint="") from None
    except (OSError, ValueError) as e:
        raise DataNotFoundError(f"store manifest unreadable ({first_line(e)})", path=str(path), hint="") from None
    try:
        manifest = document["attributes"]["astrobio"]
    except (KeyError, TypeError) as e:
        raise DataNotFoundError(f"store manifest unreadable ({first_line(e)})", path=str(path), hint="") from None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise DataNotFoundError("store is incomplete (manifest not marked complete)", path=str(path), hint="")
    try:
        kind_of_format(manifest.get("format"))
    except ConfigError as e:
        raise IntegrityError(str(e), path=str(path)) from None
    return manifest


def describe(path: Path | str, manifest: dict[str, Any]) -> StoreInfo:
    """Kind, digest, split counts, provenance and a load summary from the manifest."""
    kind = kind_of_format(manifest["format"])
    d = kind.describe(path, manifest)
    return StoreInfo(uri=str(path), kind=kind.name, digest=str(manifest.get("content_digest", "")), splits=d.splits,
                     provenance=dict(manifest.get("provenance", {})), summary=d.summary)


def open_by_kind(path: Path | str, kind: str, verify: bool = True) -> Any:
    """Open the store with its kind's reader (digest-checked when `verify`)."""
    return get_kind(kind).open(path, verify=verify)


def full_check(path: Path | str) -> StoreInfo:
    """Everything `ready` requires: the store opens, passes its kind's check (for cubes the
    Rust chunk scan) and matches the digests its manifest records. IntegrityError /
    DataNotFoundError name the first problem."""
    path = store_location(path)
    manifest = read_manifest(path)
    info = describe(path, manifest)
    info.scan = get_kind(info.kind).check(path)
    if not info.digest:
        raise IntegrityError("manifest records no content digest", path=str(path))
    return info
def digest_check(path: Path | str, digest: str, kind: str) -> str:
    """'' when the store at `path` is the registered one (same content digest, arrays match
    it); else one line saying why not. Reads the arrays once (no chunk decoding)."""
    try:
        manifest = read_manifest(store_location(path))
        if manifest.get("content_digest") != digest:
            return f"store content digest is {manifest.get('content_digest')}, the registry records {digest}"
        open_by_kind(store_location(path), kind, verify=True)
    except AstrobioError as e:
        return f"{type(e).__name__}: {e}"
    return ""
