"""Child processes of the crash tests, started from a forkserver that has torch, Lightning and
astrobio imported (a fresh interpreter per kill would spend its time importing torch).

`train_child` trains the tiny config, optionally SIGKILLing itself at one point of one
checkpoint write; `ingest_child` rewrites a store, optionally SIGKILLing itself just before or after
its swap into place. The hooks patch only os/torch functions (not astrobio internals): each completed
rename of a checkpoint is logged with the file's sha256, so the parent knows exactly which
version of every file must be on disk after the kill.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
from pathlib import Path
from typing import Any


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sha(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def install_checkpoint_kill(kill: dict[str, Any] | None, log: Path) -> None:
    """kill = {"write": n, "phase": "write" | "fsync" | "rename" | "after-rename", "fraction": f,
    "name": optional file name}: die during the n-th checkpoint write of this process (1-based;
    of that file only, when named) at that phase; `write` tears
    the temp file after `fraction` of its bytes. Every completed rename onto a `.ckpt` name is
    appended to `log` as `name<TAB>sha256`."""
    import torch

    state = {"n": 0, "tmp": None}
    real_save, real_fsync, real_replace = torch.save, os.fsync, os.replace

    def armed(phase: str) -> bool:
        return kill is not None and state["n"] == kill["write"] and kill["phase"] == phase

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(f, "name", f)
        if isinstance(name, int):  # os.fdopen'd files are named by their descriptor
            name = os.readlink(f"/proc/self/fd/{name}")
        if not (isinstance(name, str) and ".ckpt.tmp-" in os.path.basename(name)):  # atomic_write's temp sibling
            return real_save(obj, f, *args, **kwargs)
        if kill is not None and kill.get("name") and not os.path.basename(name).startswith(f".{kill['name']}."):
            return real_save(obj, f, *args, **kwargs)  # counting only the writes of that file
        state["n"] += 1
        state["tmp"] = name
        if armed("write"):
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            f.write(data[: int(len(data) * kill["fraction"])])
            f.flush()
            real_fsync(f.fileno())
            _die()
        return real_save(obj, f, *args, **kwargs)

    def fsync(fd: int) -> None:
        if state["tmp"] is not None and armed("fsync"):
            _die()
        real_fsync(fd)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        is_ckpt = str(dst).endswith(".ckpt")
        if is_ckpt and armed("rename"):
            _die()
        real_replace(src, dst, *args, **kwargs)
        if is_ckpt:
            with open(log, "a") as out:
                out.write(f"{os.path.basename(dst)}\t{_sha(dst)}\n")
            state["tmp"] = None
            if armed("after-rename"):
                _die()

    torch.save, os.fsync, os.replace = save, fsync, replace


def train_child(store: str, out: str, resume: bool, kill: dict[str, Any] | None, log: str, max_epochs: int) -> None:
    import torch

    from astrobio.train import train

    from ._util import tiny_config

    torch.set_num_threads(1)  # the same arithmetic in every child (and light on a 2-core box)
    install_checkpoint_kill(kill, Path(log))
    cfg = tiny_config(Path(store), Path(out), max_epochs=max_epochs, checkpoint_every_n_steps=1)
    train(cfg, resume=out if resume else None)


def ingest_child(path: str, seed: int, planets: int, phase: str | None) -> None:
    """Rewrite the store at `path` with new data (`seed`). phase None: no self-kill (the parent
    may kill it once its build holds some chunks); "before-swap" / "after-swap": die just
    before / after the finished build is moved into place (manifest written, fsynced)."""
    import astrobio._fsutil as fs
    import astrobio.stores._group as writer
    from train_fixtures import build_climate_fixture

    from ._util import SPLIT

    if phase is not None:
        real = fs.swap_into_place

        def swap(built: Path, target: Path) -> None:
            if phase == "before-swap":
                _die()
            real(built, target)
            _die()

        writer.swap_into_place = swap  # the writer's own reference
    n_train = planets - sum(SPLIT[1:])
    build_climate_fixture(Path(path), planets=planets, split=(n_train, *SPLIT[1:]), seed=seed)
