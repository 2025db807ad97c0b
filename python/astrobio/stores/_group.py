"""The one writer core and manifest rules every store kind shares.

A store is a zarr v3 group whose manifest sits in the group attributes under "astrobio". It is
built in a temporary sibling directory, arrays first; the manifest is written last with
"complete": true, the tree is fsynced, and the directory is renamed into place, so a reader
sees the previous store or the whole new one, never a partial one (docs/store-format.md).

One content-digest rule for every kind: sha256 of the canonical JSON (sorted keys, compact
separators) of the manifest without the fields that record the build (`BUILD_FIELDS`) and
without the fields a kind derives from data the digest already covers (its `undigested`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from .._fsutil import NotRegularFile, contained, fsync_tree, read_store_file, store_files, swap_into_place, temp_sibling, tree_digest
from ..errors import ConfigError, DataNotFoundError, IntegrityError, first_line
from . import location as loc

__all__ = ["BUILD_FIELDS", "GroupWriter", "check_digests", "check_name", "content_digest", "read_array",
           "read_group_manifest", "read_manifest"]

#: Manifest fields that describe how and where a store was built, not its data: a store's name,
#: the build's provenance (time, command, paths), the digest itself and the completion mark.
BUILD_FIELDS = frozenset({"name", "provenance", "content_digest", "complete"})


def content_digest(manifest: Mapping[str, Any], undigested: Collection[str] = ()) -> str:
    """Digest of the array digests and every manifest field describing the data (all fields but
    `BUILD_FIELDS` and the kind's `undigested` ones): identical inputs give identical digests
    wherever they are written."""
    skip = BUILD_FIELDS | frozenset(undigested)
    body = {k: v for k, v in manifest.items() if k not in skip}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def check_name(name: str, what: str) -> str:
    """Names become zarr node names: no separators, no leading dot, not empty."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or name.strip() != name:
        raise ConfigError(f"{what} {name!r} is not a valid name (no '/', no leading '.', not empty)")
    return name


def _single_chunk_codecs() -> dict[str, Any]:
    # crc32c last, like the cube store: every chunk read is checksummed.
    return {"compressors": [ZstdCodec(level=3), Crc32cCodec()]}


class GroupWriter:
    """Build a zarr v3 group next to `out`; `commit(manifest)` moves it into place.

    Leaving a `with` block without committing (or on an exception) removes the partial build;
    whatever was at `out` before stays untouched until the new group is complete.

    For an `s3://` URL the group is built in a local temporary directory and uploaded on commit
    under the object-storage commit rule (`stores.location.upload`: arrays first, the
    manifest-bearing zarr.json last).
    """

    def __init__(self, out: str | Path) -> None:
        self.out = loc.store_location(out)
        self._staging: Path | None = None
        if isinstance(self.out, str):
            self._staging = Path(tempfile.mkdtemp(prefix="astrobio-upload-"))
            self.tmp = self._staging / "store"
        else:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = temp_sibling(self.out)
        self.root = zarr.open_group(store=str(self.tmp), mode="w", zarr_format=3)
        self._arrays: list[str] = []
        self.done = False

    def __enter__(self) -> "GroupWriter":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self.done:
            self.abort()

    def abort(self) -> None:
        """Discard the partial build (the store at `out`, if any, is untouched)."""
        shutil.rmtree(self._staging or self.tmp, ignore_errors=True)
        self.done = True

    def create_array(self, name: str, **kwargs: Any) -> Any:
        """A growable array of the group (the cube writer's `cubes` and `params`)."""
        self._arrays.append(name)
        return self.root.create_array(name, **kwargs)

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
        z = group.create_array(name, shape=arr.shape, chunks=chunks, dtype=dtype, dimension_names=tuple(dims),
                               **_single_chunk_codecs())
        if arr.size:
            z[...] = arr
        self._arrays.append(path)

    def digests(self) -> dict[str, str]:
        """sha256 of every array's files (metadata and chunks), by array path."""
        return {p: tree_digest(self.tmp / p) for p in sorted(self._arrays) if (self.tmp / p).exists()}

    def commit(self, manifest: Mapping[str, Any]) -> Path | str:
        """Write `manifest` last (with "complete": true), fsync, swap into place (or upload)."""
        if self.done:
            raise ConfigError("this writer was already committed or aborted")
        self.root.attrs.update({"astrobio": {**manifest, "complete": True}})
        if isinstance(self.out, str):
            try:
                loc.upload(self.tmp, self.out)
            finally:
                self.abort()
            return self.out
        fsync_tree(self.tmp)
        swap_into_place(self.tmp, self.out)
        self.done = True
        return self.out


def refused(root: Path, e: NotRegularFile, label: str | None = None) -> IntegrityError:
    """The IntegrityError for a path of the store that is not a regular file inside it."""
    try:
        rel = Path(e.path).relative_to(root).as_posix()
    except ValueError:
        rel = str(e.path)
    return IntegrityError(e.reason, chunk=rel, path=label or str(root))


def read_group_manifest(root: Path | str) -> dict[str, Any]:
    """The raw "astrobio" attributes of the group at `root`, a directory or an s3:// URL
    (KeyError/ValueError/OSError when there are none: callers turn that into their own precise
    error). A directory's zarr.json must be a regular file of the store: anything else is an
    IntegrityError, never read or waited on."""
    if loc.is_url(root):
        return loc.read_json(str(root), "zarr.json")["attributes"]["astrobio"]
    root = Path(root)
    try:
        text = read_store_file(root, root / "zarr.json")
    except NotRegularFile as e:
        raise refused(root, e) from None
    return json.loads(text)["attributes"]["astrobio"]


def check_digests(root: Path | str, manifest: Mapping[str, Any], undigested: Collection[str] = (),
                  arrays: Collection[str] | None = None, label: str | None = None) -> None:
    """Recompute every array digest the manifest records and the content digest; IntegrityError
    when one differs (data changed after writing, or a manifest copied from another store).

    `arrays`, when given, is the closed set of array names of the kind (the cube store), and a
    manifest without digests is refused; a name never leads the reader outside the store.
    `label` names the store in errors (its URL when `root` is a local copy of it)."""
    shown = label or str(root)
    digests = manifest.get("digests")
    if arrays is not None and (not isinstance(digests, dict) or not digests):
        raise IntegrityError("manifest records no array digests, so its data cannot be checked", path=shown)
    for name, recorded in (digests or {}).items():
        if arrays is not None and name not in arrays:
            raise IntegrityError(f"manifest lists a digest for {name!r}, which is not an array of the store", path=shown)
        if isinstance(root, str):  # object storage: the same digest over the objects
            if not loc.plain_key(name):
                raise IntegrityError(f"manifest names array {name!r}, a path outside the store", path=root)
            actual = loc.tree_digest(root, name)
        else:
            where = contained(root, name)
            if where is None:  # e.g. "../x" or "/": never read outside the store
                raise IntegrityError(f"manifest names array {name!r}, a path outside the store", path=shown)
            try:
                actual = tree_digest(where, store_root=root) if where.is_dir() else "missing"
            except NotRegularFile as e:  # a FIFO, device, socket or outside link among its files
                raise refused(root, e, label) from None
        if actual != recorded:
            raise IntegrityError(f"array {name!r} digest is {actual}, the manifest records {recorded}", path=shown)
    if content_digest(manifest, undigested) != manifest.get("content_digest"):
        raise IntegrityError("manifest content digest does not match its contents", path=shown)


def read_manifest(path: str | Path, fmt: str, hint: str, verify: bool = True, version: int = 1,
                  undigested: Collection[str] = (), label: str | None = None) -> dict[str, Any]:
    """The manifest of the complete `fmt` group at `path` (tables and graphs): a directory, or
    an s3:// URL (its manifest object read, its digests checked over the objects). `label`
    names the store in errors when `path` is a local copy (`location.local_view`).

    DataNotFoundError when the group is missing, incomplete or of another format;
    IntegrityError when a newer format version or data that no longer matches its digests.
    """
    if loc.is_url(path):
        with loc.local_view(path) as (local, url):
            return read_manifest(local, fmt, hint, verify, version, undigested, label=url)
    root = Path(path)
    shown = label or str(root)
    if not root.exists():
        raise DataNotFoundError(f"no {fmt} store", path=shown, hint=hint)
    if not (root / "zarr.json").exists():
        raise DataNotFoundError(f"{shown} is not a zarr v3 group (no zarr.json), so not a {fmt} store", path=shown, hint=hint)
    try:
        manifest = read_group_manifest(root)
    except IntegrityError:  # zarr.json is not a regular file of the store
        raise
    except (ValueError, KeyError, TypeError):
        raise DataNotFoundError(f"{fmt} store at {shown} is incomplete (no manifest; an interrupted build?)", path=shown, hint=hint) from None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise DataNotFoundError(f"{fmt} store at {shown} is incomplete (manifest not marked complete)", path=shown, hint=hint)
    if manifest.get("format") != fmt:
        raise DataNotFoundError(f"{shown} holds format {manifest.get('format')!r}, not {fmt!r}", path=shown, hint=hint)
    if manifest.get("format_version") != version:
        raise IntegrityError(f"format version {manifest.get('format_version')!r} is not supported (this astrobio reads {version})", path=shown)
    if verify:
        check_digests(root, manifest, undigested, label=label)
    return manifest


def read_array(root: Path, path: str, label: str | None = None) -> np.ndarray:
    """Read one array of a local group (crc32c-checked by zarr); strings come back as a
    list-like numpy array of str. `label` names the store in errors (see `read_manifest`)."""
    shown = label or str(root)
    where = contained(root, path)
    if where is None:  # names come from the manifest: never follow one outside the store
        raise IntegrityError(f"array path {path!r} leads outside the store", path=shown)
    try:
        for _ in store_files(where, root):  # zarr opens these itself: the store's file rule first
            pass
    except NotRegularFile as e:
        raise refused(root, e, label) from None
    except OSError as e:
        raise IntegrityError(f"array {path!r} is missing or unreadable ({first_line(e).replace(str(root), shown)})", path=shown) from None
    try:
        return np.asarray(zarr.open_array(store=str(where), mode="r", zarr_format=3)[...])
    except Exception as e:  # zarr raises several types: missing node, bad metadata, checksum
        raise IntegrityError(f"array {path!r} is missing or unreadable ({first_line(e).replace(str(root), shown)})", path=shown) from None
