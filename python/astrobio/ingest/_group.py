"""Atomic zarr v3 groups for the non-cube formats (tables, graphs): arrays written into a
temporary sibling directory, the manifest written last into the group's attributes under
"astrobio" with "complete": true, fsync, then renamed into place. Opening refuses a missing or
incomplete group and checks every array against the digest the manifest records."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fsutil import contained, fsync_tree, swap_into_place, temp_sibling, tree_digest
from ..errors import ConfigError, DataNotFoundError, IntegrityError

__all__ = ["GroupBuilder", "read_manifest", "read_array", "content_digest", "check_name", "code_version"]

FORMAT_VERSION = 1


def _codecs() -> dict[str, Any]:
    from zarr.codecs import Crc32cCodec, ZstdCodec

    # crc32c last, like the cube store: every chunk read is checksummed.
    return {"compressors": [ZstdCodec(level=3), Crc32cCodec()]}


def code_version(*modules: str) -> str:
    """astrobio's version plus a hash of the source of the modules that shape the output, so
    that an ingest re-runs when its code changes, not only when the package version does."""
    from .. import __version__

    h = hashlib.sha256()
    for m in (__file__, *modules):
        h.update(Path(m).read_bytes())
    return f"{__version__}+{h.hexdigest()[:16]}"


def check_name(name: str, what: str) -> str:
    """Names become zarr node names: no separators, no leading dot, not empty."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or name.strip() != name:
        raise ConfigError(f"{what} {name!r} is not a valid name (no '/', no leading '.', not empty)")
    return name


class GroupBuilder:
    """Build a zarr v3 group next to `out`; `commit(manifest)` moves it into place.

    Leaving a `with` block without committing (or on an exception) removes the partial build;
    whatever was at `out` before stays untouched until the new group is complete.
    """

    def __init__(self, out: Path) -> None:
        import zarr

        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_sibling(out)
        self.root = zarr.open_group(store=str(self.tmp), mode="w", zarr_format=3)
        self._arrays: list[str] = []
        self._done = False

    def __enter__(self) -> "GroupBuilder":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._done:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self._done = True

    def array(self, path: str, data: np.ndarray | Sequence[str], dims: Sequence[str]) -> None:
        """Write one array at `path` ("name" or "sub/name"), a single chunk; strings as the
        zarr v3 "string" data type (vlen-utf8), numbers as given."""
        *parents, name = path.split("/")
        group = self.root
        for p in parents:
            group = group.require_group(p)
        if isinstance(data, np.ndarray) and data.dtype.kind not in "OUT":
            arr = np.ascontiguousarray(data)
            dtype: Any = arr.dtype
        else:
            arr = np.asarray(list(data), dtype=object)
            dtype = str
        if arr.ndim != len(dims):
            raise ConfigError(f"array {path!r} has {arr.ndim} dimensions, {len(dims)} names given")
        chunks = tuple(max(1, s) for s in arr.shape)
        z = group.create_array(name, shape=arr.shape, chunks=chunks, dtype=dtype, dimension_names=tuple(dims), **_codecs())
        if arr.size:
            z[...] = arr
        self._arrays.append(path)

    def digests(self) -> dict[str, str]:
        """sha256 of every array's files (metadata and chunks), by array path."""
        return {p: tree_digest(self.tmp / p) for p in sorted(self._arrays)}

    def commit(self, manifest: Mapping[str, Any]) -> Path:
        """Write `manifest` last (with "complete": true), fsync, swap into place."""
        self.root.attrs.update({"astrobio": {**manifest, "complete": True}})
        fsync_tree(self.tmp)
        swap_into_place(self.tmp, self.out)
        self._done = True
        return self.out


def content_digest(manifest: Mapping[str, Any], exclude: Sequence[str] = ("name", "provenance", "content_digest", "complete")) -> str:
    """Digest of the array digests and every manifest field describing the data; the store's
    name and the build's provenance (time, command, paths) are left out, so identical inputs
    give identical digests wherever they are written."""
    body = {k: v for k, v in manifest.items() if k not in exclude}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def read_manifest(path: str | Path, fmt: str, hint: str, verify: bool = True) -> dict[str, Any]:
    """The manifest of the complete `fmt` group at `path`.

    DataNotFoundError when the group is missing, incomplete or of another format;
    IntegrityError when a newer format version or data that no longer matches its digests.
    """
    root = Path(path)
    meta_path = root / "zarr.json"
    if not root.exists():
        raise DataNotFoundError(f"no {fmt} store", path=str(root), hint=hint)
    if not meta_path.is_file():
        raise DataNotFoundError(f"{root} is not a zarr v3 group (no zarr.json), so not a {fmt} store", path=str(root), hint=hint)
    try:
        manifest = json.loads(meta_path.read_text())["attributes"]["astrobio"]
    except (ValueError, KeyError, TypeError):
        raise DataNotFoundError(f"{fmt} store at {root} is incomplete (no manifest; an interrupted build?)", path=str(root), hint=hint) from None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise DataNotFoundError(f"{fmt} store at {root} is incomplete (manifest not marked complete)", path=str(root), hint=hint)
    if manifest.get("format") != fmt:
        raise DataNotFoundError(f"{root} holds format {manifest.get('format')!r}, not {fmt!r}", path=str(root), hint=hint)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IntegrityError(f"format version {manifest.get('format_version')!r} is not supported (this astrobio reads {FORMAT_VERSION})", path=str(root))
    if verify:
        for name, recorded in manifest.get("digests", {}).items():
            where = contained(root, name)
            if where is None:  # e.g. "../x" or "/": never read outside the store
                raise IntegrityError(f"manifest names array {name!r}, a path outside the store", path=str(root))
            actual = tree_digest(where) if where.is_dir() else "missing"
            if actual != recorded:
                raise IntegrityError(f"array {name!r} digest is {actual}, the manifest records {recorded}", path=str(root))
        if content_digest(manifest) != manifest.get("content_digest"):
            raise IntegrityError("manifest content digest does not match its contents", path=str(root))
    return manifest


def read_array(root: Path, path: str) -> np.ndarray:
    """Read one array of a group (crc32c-checked by zarr); strings come back as a list-like
    numpy array of str."""
    import zarr

    where = contained(root, path)
    if where is None:  # names come from the manifest: never follow one outside the store
        raise IntegrityError(f"array path {path!r} leads outside the store", path=str(root))
    try:
        return np.asarray(zarr.open_array(store=str(where), mode="r", zarr_format=3)[...])
    except Exception as e:  # zarr raises several types: missing node, bad metadata, checksum
        raise IntegrityError(f"array {path!r} is missing or unreadable ({e})", path=str(root)) from None
