"""The untouched evaluation set's ledger: each candidate model is evaluated once on it (issue 27).

A store whose provenance says ``untouched: true`` (`astrobio datasets pack-climate DIR
--untouched --store PATH`) is never trained or early-stopped on (the trainer refuses it), and
`astrobio evaluate` records every evaluation on it in an append-only ledger beside the registry,
``$ASTROBIO_HOME/untouched-ledger.jsonl``: one JSON line per evaluation with the run, the digest
of its checkpoint(s), the store's content digest, the time and the headline numbers. A second
evaluation of the same checkpoint on the same untouched store is refused unless asked for
(``--again``), and that one is recorded too, so how often a model saw the set is on file.

The check and the append happen under an exclusive lock on the ledger held for the whole
evaluation, so two evaluations of one model started at once cannot both count as the first; a
line is appended with one write and fsynced.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._fsutil import file_digest, fsync_dir
from .._home import data_home
from .._version import __version__
from ..errors import ConfigError, IntegrityError
from ..stores.cube import Store

__all__ = ["LEDGER_NAME", "is_untouched", "ledger_path", "checkpoint_digest", "Ledger", "open_ledger", "ledger_entry"]

LEDGER_NAME = "untouched-ledger.jsonl"


def is_untouched(store: Store) -> bool:
    """Whether the store is an untouched evaluation set (its provenance says so)."""
    return bool((store.manifest.get("provenance") or {}).get("untouched"))


def ledger_path() -> Path:
    """``$ASTROBIO_HOME/untouched-ledger.jsonl`` (beside the registry's database)."""
    return data_home() / LEDGER_NAME


def checkpoint_digest(checkpoints: Sequence[Path]) -> str:
    """The candidate model's identity: sha256 of its checkpoint file (an ensemble: of its members' digests, in order)."""
    digests = [file_digest(Path(p)) for p in checkpoints]
    if len(digests) == 1:
        return digests[0]
    return "sha256:" + hashlib.sha256("\n".join(digests).encode()).hexdigest()


class Ledger:
    """The ledger file, held under an exclusive lock (`open_ledger`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[dict[str, Any]]:
        """Every recorded evaluation, oldest first (a line that is not JSON: IntegrityError)."""
        if not self.path.is_file():
            return []
        out = []
        for n, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise IntegrityError(f"untouched ledger line {n} is not a JSON record; whether a model was already "
                                     "evaluated cannot be told", path=str(self.path)) from None
        return out

    def evaluations(self, checkpoint: str, store_digest: str) -> list[dict[str, Any]]:
        """The recorded evaluations of this checkpoint on this store."""
        return [e for e in self.entries() if e.get("checkpoint_digest") == checkpoint and e.get("store_digest") == store_digest]

    def check(self, run: Path, checkpoint: str, store_digest: str, again: bool) -> int:
        """How often this checkpoint was evaluated on this store; ConfigError when it was and `again` is not set."""
        seen = self.evaluations(checkpoint, store_digest)
        if seen and not again:
            raise ConfigError(f"run {run} (checkpoint {checkpoint[:19]}) was already evaluated on this untouched store "
                              f"at {seen[0]['time']} ({self.path}); the set is evaluated once per candidate model: "
                              "pass --again to evaluate it again (recorded too)")
        return len(seen)

    def append(self, entry: dict[str, Any]) -> None:
        """One JSON line, written with one call and fsynced (a new ledger's folder entry too)."""
        line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.write(fd, line) != len(line):
                raise IntegrityError("short write to the untouched ledger", path=str(self.path))
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.path.parent)


@contextmanager
def open_ledger(path: Path | None = None) -> Iterator[Ledger]:
    """The ledger under an exclusive lock (a sibling ``.lock`` file; released when the process ends, however it ends)."""
    path = Path(path) if path is not None else ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield Ledger(path)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def ledger_entry(run: Path, checkpoints: Sequence[Path], checkpoint: str, store: Store, split: str, res: dict[str, Any],
                 intervals: dict[str, Any], again: bool, previous: int) -> dict[str, Any]:
    """The ledger line of one evaluation: who, what, when, and the headline numbers."""
    head: dict[str, Any] = {"n_samples": res["n_samples"], "planets": len(res.get("runs", {})),
                            "rmse": {k: res[k]["rmse"] for k in ("model", "climatology", "physics_baseline") if k in res},
                            "skill": {}}
    for base in ("climatology", "physics_baseline"):
        if base in res:
            one = intervals.get(base, {}).get("all")
            head["skill"][base] = {"point": 1 - res["model"]["rmse"] / res[base]["rmse"],
                                   **({"interval": [one["low"], one["high"]]} if one else {})}
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run": str(Path(run).resolve()),
            "checkpoints": [str(Path(p).resolve()) for p in checkpoints], "checkpoint_digest": checkpoint,
            "store": str(store.path), "store_digest": store.manifest.get("content_digest"), "split": split,
            "again": again, "previous_evaluations": previous, "astrobio": __version__, "headline": head}
