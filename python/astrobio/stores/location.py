"""Where a store lives: a local directory or an S3-compatible object-storage URL
(`s3://bucket/prefix`), for every store kind. `store_location` turns user input into the one
form astrobio passes around (a `Path`, or the URL string), `name_of` names it, `local_view`
gives a private local copy of a small store at a URL; the rest is the object I/O.

All object I/O goes through the Rust core (`astrobio._core.object_*`, object_store on the core's
runtime), so credentials, endpoints, timeouts and retries are configured in one place: the
standard AWS environment variables and `ASTROBIO_S3_*` (docs/object-storage.md). No Python S3
client is needed.

The commit rule on object storage (there is no rename): the group's `zarr.json`, which carries
the manifest, is the LAST object written. Replacing a store first deletes its `zarr.json` (from
then on nothing opens at the URL), then the objects the new build does not overwrite, then
uploads the arrays, then the new `zarr.json`. An upload killed at any point leaves no store that
opens: readers get DataNotFoundError, never old metadata over new chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._native import core
from ..errors import ConfigError, IntegrityError

__all__ = ["is_url", "store_location", "name_of", "get", "put", "delete", "listing", "read_json", "tree_digest", "upload",
           "plain_key", "download", "local_view", "SNAPSHOT_MAX_BYTES"]

#: Objects uploaded or downloaded at once (each request releases the GIL in the core).
UPLOAD_THREADS = 16
GROUP_METADATA = "zarr.json"
#: Most bytes `download` copies from one store: tables and graphs are megabytes, so a store
#: listing more is refused before anything is fetched (a hostile listing cannot fill the disk).
SNAPSHOT_MAX_BYTES = 4 << 30


def _core() -> Any:
    return core()


def is_url(location: object) -> bool:
    """Whether `location` is an object-store URL rather than a local path."""
    return isinstance(location, str) and "://" in location


def store_location(location: str | Path) -> str | Path:
    """A store's location as astrobio passes it around: the URL string (without a trailing
    slash) for object storage, a `Path` otherwise. A URL squashed by `Path()` ("s3:/b/x") is
    refused: it would silently name a local directory."""
    if is_url(location):
        assert isinstance(location, str)
        return location.rstrip("/")
    text = str(location)
    if text.startswith("s3:/"):
        raise ConfigError(f"{text!r} looks like an s3:// URL passed through pathlib.Path; pass the URL as a string")
    return Path(location)


def name_of(location: str | Path) -> str:
    """The last segment of a store's path or URL (its default name)."""
    return location.rstrip("/").rsplit("/", 1)[-1] if isinstance(location, str) else location.name


def plain_key(rel: str) -> bool:
    """A name read from a manifest is a plain relative key (no '..', no absolute path, no NUL)."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel or rel.startswith("/"):
        return False
    return not any(p in ("", ".", "..") for p in rel.split("/"))


def get(url: str, key: str, max_bytes: int = 1 << 30) -> bytes | None:
    """The object at `key` of the store at `url`; None when it does not exist."""
    return _core().object_get(url, key, max_bytes)


def put(url: str, key: str, data: bytes) -> None:
    _core().object_put(url, key, data)


def delete(url: str, key: str) -> None:
    _core().object_delete(url, key)


def listing(url: str, prefix: str = "") -> list[tuple[str, int]]:
    """(key, size) of every object under `prefix` of the store at `url`, sorted by key."""
    return [(str(k), int(n)) for k, n in _core().object_list(url, prefix)]


def read_json(url: str, key: str) -> Any:
    """A JSON object of the store; FileNotFoundError when absent (as a local file would be)."""
    data = get(url, key, 256 << 20)
    if data is None:
        raise FileNotFoundError(f"{url}/{key}")
    return json.loads(data)


def tree_digest(url: str, prefix: str) -> str:
    """`_fsutil.tree_digest` of the objects under `prefix/` (relative key and bytes, sorted):
    the digest the writer recorded from the local build, so equal data gives equal digests."""
    h = hashlib.sha256()
    base = prefix.rstrip("/") + "/"
    keys = [k for k, _ in listing(url, base)]
    if not keys:
        return "missing"
    for key in keys:
        data = get(url, key)
        if data is None:  # deleted between listing and reading
            return "missing"
        h.update(key[len(base):].encode() + b"\0")
        h.update(data)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def upload(build: Path, url: str) -> str:
    """Upload the complete local build `build` to `url` under the commit rule (module docstring)."""
    files = sorted(p.relative_to(build).as_posix() for p in build.rglob("*") if p.is_file())
    if GROUP_METADATA not in files:
        raise ConfigError(f"{build} has no {GROUP_METADATA}; only a complete build is uploaded")
    old = [k for k, _ in listing(url)]
    if old:
        delete(url, GROUP_METADATA)  # first: from here on no store opens at the URL
        stale = sorted(set(old) - set(files) - {GROUP_METADATA})
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(lambda k: delete(url, k), stale))
    arrays = [f for f in files if f != GROUP_METADATA]
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(pool.map(lambda k: put(url, k, (build / k).read_bytes()), arrays))
    put(url, GROUP_METADATA, (build / GROUP_METADATA).read_bytes())  # last: the store exists
    return url


def download(url: str, dest: Path) -> int:
    """Copy every object of the store at `url` into the new directory `dest` (same relative
    keys); returns how many. Nothing is created when the URL holds no object. A key that is not
    a plain relative name, or a listing over `SNAPSHOT_MAX_BYTES`, is an IntegrityError."""
    # The manifest first, by a GET: the core names a refused GET "access denied (check ...)",
    # a refused listing only by the server's words.
    manifest = get(url, GROUP_METADATA, 256 << 20)
    objects = listing(url)
    if not objects:
        return 0
    bad = next((k for k, _ in objects if not plain_key(k)), None)
    if bad is not None:  # could name a path outside `dest`
        raise IntegrityError(f"object key {bad!r} is not a plain relative name", path=url)
    total = sum(n for _, n in objects)
    if total > SNAPSHOT_MAX_BYTES:
        raise IntegrityError(f"store lists {total} bytes, more than a table or graph store may hold ({SNAPSHOT_MAX_BYTES})", path=url)

    def fetch(item: tuple[str, int]) -> None:
        key, size = item
        data = manifest if key == GROUP_METADATA and manifest is not None else get(url, key, max(size, 1))
        if data is None:  # deleted since the listing: left out, the digest check names the array
            return
        target = dest.joinpath(*key.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    dest.mkdir(parents=True)
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(pool.map(fetch, objects))
    return len(objects)


@contextlib.contextmanager
def local_view(location: str | Path) -> Iterator[tuple[Path, str]]:
    """(a local directory holding the group at `location`, the name errors give it).

    A directory is itself. A URL is downloaded once into a private temporary directory (mode
    0700, removed on exit), so the digests are checked over exactly the bytes then read; the
    name stays the URL. Used by the small store kinds (tables, graphs), whose local readers then
    apply unchanged; cube stores are read object by object by the Rust core instead."""
    where = store_location(location)
    if isinstance(where, Path):
        yield where, str(where)
        return
    tmp = Path(tempfile.mkdtemp(prefix="astrobio-fetch-"))
    try:
        download(where, tmp / "store")
        yield tmp / "store", where
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
