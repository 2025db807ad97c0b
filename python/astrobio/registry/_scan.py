"""What the registry reads from a store: its kind, digest, splits, provenance and a summary,
and the full check (Rust chunk scan + digest check) a version must pass to become `ready`.

Store kinds come from the stores package's registry (`astrobio.stores.KINDS`). A store is a
local directory or an s3:// URL (registered where it is, never copied): cube stores are checked
object by object by the Rust core, tables and graphs from one downloaded copy (`stores._remote`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._fsutil import read_store_file
from ..errors import AstrobioError, DataNotFoundError, IntegrityError, first_line
from ..stores import KINDS, open_graphs, open_store, open_table
from ..stores._remote import is_url, read_json, store_location

__all__ = ["StoreInfo", "FORMAT_KINDS", "read_manifest", "describe", "full_check", "digest_check", "open_by_kind"]

FORMAT_KINDS = {fmt: k.kind for fmt, k in KINDS.items()}


@dataclass
class StoreInfo:
    """What a version records about its store."""

    uri: str
    kind: str
    digest: str
    splits: dict[str, dict[str, int]]
    provenance: dict[str, Any]
    summary: dict[str, Any]
    scan: dict[str, Any] = field(default_factory=dict)   # the Rust scan report (cubes)


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
    if manifest.get("format") not in FORMAT_KINDS:
        raise IntegrityError(f"unknown store format {manifest.get('format')!r}", path=str(path))
    return manifest


def describe(path: Path | str, manifest: dict[str, Any]) -> StoreInfo:
    """Kind, digest, split counts, provenance and a load summary from the manifest."""
    kind = FORMAT_KINDS[manifest["format"]]
    if kind == "cube":
        counts = {r["id"]: int(r["count"]) for r in manifest["runs"]}
        splits = {name: {"runs": len(ids), "samples": sum(counts[i] for i in ids)} for name, ids in manifest["split"].items()}
        summary = {"format": manifest["format"], "format_version": manifest["format_version"], "n_samples": manifest["n_samples"],
                   "sample_shape": manifest["sample_shape"], "variables": [v["name"] for v in manifest["variables"]],
                   "params": [p["name"] for p in manifest.get("params", [])], "runs": len(manifest["runs"])}
    elif kind == "table":
        splits = {"all": {"runs": 1, "samples": int(manifest["n_rows"])}}
        summary = {"format": manifest["format"], "format_version": manifest["format_version"], "n_rows": manifest["n_rows"],
                   "columns": [c["name"] for c in manifest["columns"]], "key": manifest.get("key"), "schema": manifest.get("schema")}
    else:
        models = manifest["models"]
        splits = {"all": {"runs": len(models), "samples": len(models)}}
        summary = {"format": manifest["format"], "format_version": manifest["format_version"],
                   "models": {k: v["counts"] for k, v in models.items()}}
    return StoreInfo(uri=str(path), kind=kind, digest=str(manifest.get("content_digest", "")), splits=splits,
                     provenance=dict(manifest.get("provenance", {})), summary=summary)


def open_by_kind(path: Path | str, kind: str, verify: bool = True) -> Any:
    """Open the store with its kind's reader (digest-checked when `verify`)."""
    if kind == "cube":
        store = open_store(path)
        if verify:
            store.verify_digest()
        return store
    if kind == "table":
        return open_table(path, verify=verify)
    return open_graphs(path, verify=verify)


def full_check(path: Path | str) -> StoreInfo:
    """Everything `ready` requires: the store opens, every chunk passes the Rust scan (cubes),
    and the data matches the digests its manifest records. IntegrityError / DataNotFoundError
    name the first problem."""
    path = store_location(path)
    manifest = read_manifest(path)
    info = describe(path, manifest)
    if info.kind == "cube":
        store = open_store(path)
        report = store.verify()
        info.scan = report
        if not report["ok"]:
            first = report["failures"][0] if report["failures"] else {}
            raise IntegrityError(f"{report['chunks_failed']} bad chunks, {report['unexpected_files']} stray files; first: "
                                 f"{first.get('reason', 'unknown')}", run=first.get("run"), chunk=first.get("chunk"), path=str(path))
        store.verify_digest()
    else:
        open_by_kind(path, info.kind, verify=True)
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
