"""Filesystem helpers for atomic, durable writes and content digests."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["fsync_tree", "fsync_dir", "atomic_write_bytes", "swap_into_place", "temp_sibling", "tree_digest"]


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same directory, fsync, rename."""
    tmp = temp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def swap_into_place(built: Path, target: Path) -> None:
    """Move the finished directory `built` to `target`, replacing any previous one.

    The previous directory is renamed aside first and removed only after the new one is in
    place, so a crash leaves either the old store or the new one at `target` (or, in the
    instant between the two renames, the old one beside it as `.NAME.old-*`).
    """
    old = None
    if target.exists():
        old = temp_sibling(target, "old")
        os.rename(target, old)
    os.rename(built, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def tree_digest(root: Path, exclude: frozenset[str] = frozenset()) -> str:
    """sha256 over every file under `root` (relative path and bytes), in sorted order."""
    h = hashlib.sha256()
    files = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
    )
    for rel in files:
        if rel in exclude:
            continue
        h.update(rel.encode() + b"\0")
        with open(root / rel, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()
