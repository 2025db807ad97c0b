"""Provenance shared by every ingest: source digests, tool versions, the command, the code
version, and an inputs digest that makes re-running an ingest on unchanged inputs a no-op."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .._fsutil import file_digest
from .._redact import redact
from .._version import __version__
from ..stores._group import read_group_manifest

__all__ = ["file_digest", "sources_record", "tool_versions", "inputs_digest", "up_to_date", "command_line", "code_version"]


def code_version(*modules: str) -> str:
    """astrobio's version plus a hash of the source of the modules that shape the output, so
    that an ingest re-runs when its code changes, not only when the package version does."""
    h = hashlib.sha256()
    for m in modules:
        h.update(Path(m).read_bytes())
    return f"{__version__}+{h.hexdigest()[:16]}"


def sources_record(paths: Iterable[Path]) -> list[dict[str, Any]]:
    return [{"path": redact(str(p)), "name": redact(p.name), "bytes": p.stat().st_size, "digest": file_digest(p)} for p in paths]


def tool_versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def command_line() -> str:
    """The command that ran, for the manifest; credentials in it are redacted (manifests are
    shared with the data)."""
    return redact(" ".join(shlex.quote(a) for a in sys.argv))


def inputs_digest(sources: list[dict[str, Any]], options: Mapping[str, Any], code_version: str) -> str:
    """Digest of what determines an ingest's output: source bytes, options, code version."""
    key = {"sources": sorted(s["digest"] for s in sources), "options": options, "code": code_version}
    return "sha256:" + hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def up_to_date(out: Path | str, digest: str) -> bool:
    """True when `out` is a complete store built from exactly these inputs."""
    if not isinstance(out, str) and not (out / "zarr.json").is_file():
        return False
    try:
        manifest = read_group_manifest(out)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(manifest.get("complete")) and manifest.get("provenance", {}).get("inputs_digest") == digest
