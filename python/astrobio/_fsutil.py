"""Filesystem helpers for atomic, durable writes and content digests."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["fsync_tree", "fsync_dir", "atomic_write", "atomic_write_bytes", "swap_into_place", "temp_sibling", "tree_digest",
           "file_digest", "contained", "NotRegularFile", "read_store_file", "store_files"]


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """A unique hidden path next to `path` (same filesystem, so rename is atomic)."""
    return path.parent / f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root` (children before parents)."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path` for writing; on a clean exit flush, fsync, rename it
    over `path` and fsync the directory, so readers see the old file or the whole new one and a
    crash leaves no partial file. On an exception the temporary file is removed. The one way
    astrobio writes files that matter (manifests, checkpoints, summaries, simulation outputs)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def swap_into_place(built: Path, target: Path) -> None:
    """Move the finished directory `built` to `target`, replacing any previous one.

    Where the OS can exchange two paths atomically (Linux renameat2 RENAME_EXCHANGE), the new
    directory and the previous one swap places in one step, so a crash at any instant leaves
    either the whole old store or the whole new one at `target`. Elsewhere the previous
    directory is renamed aside first and removed only after the new one is in place (in the
    instant between the two renames, the old one is beside `target` as `.NAME.old-*`).
    """
    if target.exists() and _exchange(built, target):
        fsync_dir(target.parent)
        shutil.rmtree(built, ignore_errors=True)  # now holds the previous store
        return
    old = None
    if target.exists():
        old = temp_sibling(target, "old")
        os.rename(target, old)
    os.rename(built, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange paths `a` and `b`; False when the platform or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):  # no glibc >= 2.28 (musl, old systems)
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):  # filesystem without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def contained(root: Path, rel: str) -> Path | None:
    """`root / rel` when `rel` is a plain relative path that stays inside `root` (no absolute
    path, no '..', no NUL, no backslash); None otherwise. For names read from a manifest, which
    must never lead a reader outside the store."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel or rel.startswith("/"):
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts) or Path(rel).is_absolute() or Path(rel).drive:
        return None
    return root.joinpath(*parts)


def file_digest(path: Path) -> str:
    """"sha256:<hex>" of one file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


class NotRegularFile(OSError):
    """A path of a store that is not a regular file inside it (callers turn this into their own
    IntegrityError, naming the store). `reason` is the one-line why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str | None:
    """None for a regular file, else what is there instead."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "a special file")


def _check_mode(path: Path, mode: int) -> None:
    what = _kind(mode)
    if what is not None:
        raise NotRegularFile(path, f"not a regular file ({what})")


def _check_inside(store_root: Path, path: Path) -> None:
    """The store's symlink policy (docs/store-format.md): a file is read only when its real path
    lies inside the store's real root (the root itself may be a link)."""
    real, root = os.path.realpath(path), os.path.realpath(store_root)
    if os.path.commonpath([real, root]) != root:
        raise NotRegularFile(path, f"a symbolic link leading outside the store (to {real}), refused")


def read_store_file(store_root: Path, path: Path) -> bytes:
    """The bytes of `path`, a regular file inside the store at `store_root`; never opens a
    device and never waits on a FIFO (stat first, then O_NONBLOCK open and fstat: the same rule
    as the Rust core's regular.rs). FileNotFoundError when missing, NotRegularFile otherwise."""
    try:
        _check_mode(path, os.stat(path).st_mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegularFile(path, "not a regular file (a symbolic link loop)") from None
        raise
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_mode(path, os.fstat(fd).st_mode)
        _check_inside(store_root, path)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def store_files(root: Path, store_root: Path | None = None) -> Iterator[tuple[str, Path]]:
    """(relative posix path, path) of every file under `root` (a store or one of its arrays),
    sorted, each checked by the store's file rule: a regular file, or a symbolic link to one
    inside `store_root` (default `root`). Linked directories inside the store are walked once
    (a cycle is refused); a special file or a link leading outside raises NotRegularFile."""
    store_root = store_root or root
    if root != store_root:  # an array directory reached through a link must stay inside too
        _check_inside(store_root, root)
    found: list[tuple[str, Path]] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, Path]] = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        st = os.stat(directory)
        if (st.st_dev, st.st_ino) in seen:
            raise NotRegularFile(directory, "a symbolic link loop (a directory reached twice)")
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(directory) as entries:
            for entry in entries:
                rel, path = prefix + entry.name, Path(entry.path)
                if entry.is_symlink():
                    try:
                        target = os.stat(path)
                    except OSError as e:
                        why = "a symbolic link loop" if e.errno == errno.ELOOP else "a dangling symbolic link"
                        raise NotRegularFile(path, f"not a regular file ({why})") from None
                    _check_inside(store_root, path)
                    mode = target.st_mode
                else:
                    mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    stack.append((rel + "/", path))
                    continue
                _check_mode(path, mode)
                found.append((rel, path))
    return iter(sorted(found))


def tree_digest(root: Path, exclude: frozenset[str] = frozenset(), store_root: Path | None = None) -> str:
    """sha256 over every file under `root` (relative path and bytes), in sorted order. Every
    file must pass the store's file rule (`store_files`), so a FIFO or device is refused, never
    read, and no link leads the digest outside `store_root` (default `root`)."""
    h = hashlib.sha256()
    for rel, path in store_files(root, store_root):
        if rel in exclude:
            continue
        h.update(rel.encode() + b"\0")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            _check_mode(path, os.fstat(f.fileno()).st_mode)  # what was opened, if it changed since
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()
