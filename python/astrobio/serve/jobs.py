"""Background collect jobs: a small thread pool; every state change is written to the jobs
table, so `GET /jobs/{id}` answers from the database (and after a restart).

Stopping (SIGTERM: uvicorn's graceful shutdown ends the app's lifespan): queued jobs are
cancelled and marked failed with their versions; running collects are given `grace` seconds
to finish (the ingest writes to a hidden temporary sibling and renames it into place last, so
a version is never half-written), and any still running then is marked failed. A process
killed outright leaves hidden temporaries: `sweep_temporaries` removes those of dead
processes when the next server starts, and `fail_stale` marks their jobs failed."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from ..errors import AstrobioError, first_line
from ..registry._db import read_session, write_session
from ..registry.collect import collect_into
from ..registry.core import Registry, _iso
from ..registry.models import Job, utcnow

__all__ = ["JobRunner", "job_dict", "sweep_temporaries"]

log = logging.getLogger(__name__)


def job_dict(j: Job) -> dict[str, Any]:
    return {"id": j.id, "dataset": j.dataset, "version": j.version_number,
            "ref": f"{j.dataset}@v{j.version_number}" if j.version_number else None, "state": j.state,
            "progress": j.progress, "error": j.error, "created": _iso(j.created), "updated": _iso(j.updated)}


# the atomic writers' hidden siblings: .NAME.tmp-PID-XXXXXXXX (being built), .NAME.old-PID-... (being replaced)
_TEMPORARY = re.compile(r"^\..+\.(?:tmp|old)-(?P<pid>[0-9]+)-[0-9a-f]+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temporaries(root: Path) -> list[Path]:
    """Remove the hidden temporary folders that killed collects left under `root/<dataset>/`
    (only those whose writing process is gone); returns what was removed."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for ds in root.iterdir():
        if not ds.is_dir() or ds.name.startswith("."):
            continue
        for entry in ds.iterdir():
            m = _TEMPORARY.match(entry.name)
            if m and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


class JobRunner:
    def __init__(self, reg: Registry, roots: list[Path], store_root: Path | None, workers: int) -> None:
        self.reg, self.roots, self.store_root = reg, roots, store_root
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="collect")
        self._futures: dict[str, tuple[Future[None], str, int]] = {}  # job id -> (future, dataset, version)
        self._lock = threading.Lock()

    def fail_stale(self, before: dt.datetime) -> int:
        """Jobs queued or running in a process that is gone: failed."""
        with write_session(self.reg.engine) as s:
            res = s.execute(update(Job).where(Job.state.in_(("queued", "running")), Job.created < before)
                            .values(state="failed", error="interrupted: the server stopped", updated=utcnow()))
            return int(res.rowcount or 0)

    def submit(self, spec: dict[str, Any], number: int) -> str:
        job_id = uuid.uuid4().hex
        with write_session(self.reg.engine) as s:
            s.add(Job(id=job_id, dataset=spec["dataset"], version_number=number, state="queued", progress="", error="", request=spec))
        fut = self.pool.submit(self._run, job_id, spec, number)
        with self._lock:
            self._futures[job_id] = (fut, spec["dataset"], number)
        fut.add_done_callback(lambda _f: self._forget(job_id))
        return job_id

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)

    def _set(self, job_id: str, **values: Any) -> None:
        with write_session(self.reg.engine) as s:
            s.execute(update(Job).where(Job.id == job_id).values(updated=utcnow(), **values))

    def _run(self, job_id: str, spec: dict[str, Any], number: int) -> None:
        self._set(job_id, state="running", progress="starting")
        try:
            collect_into(self.reg, spec, number, self.roots, root=self.store_root,
                         progress=lambda msg: self._set(job_id, progress=msg))
        except AstrobioError as e:
            self._set(job_id, state="failed", error=f"{type(e).__name__}: {e}", progress="failed")
        except Exception as e:  # a job thread must record every failure, whatever raised it
            log.exception("collect job %s failed", job_id)
            self._set(job_id, state="failed", error=first_line(e), progress="failed")
        else:
            self._set(job_id, state="succeeded", progress="ready")

    def get(self, job_id: str) -> dict[str, Any] | None:
        with read_session(self.reg.engine) as s:
            j = s.scalars(select(Job).where(Job.id == job_id)).one_or_none()
            return job_dict(j) if j is not None else None

    def _interrupt(self, job_id: str, dataset: str, number: int, why: str) -> None:
        self.reg.fail_version(dataset, number, why)
        self._set(job_id, state="failed", error=why, progress="failed")

    def shutdown(self, grace: float = 60.0) -> int:
        """Cancel queued jobs (marked failed), let running collects finish for up to `grace`
        seconds, mark any still running failed; returns how many jobs were marked."""
        with self._lock:
            pending = dict(self._futures)
        marked = 0
        for job_id, (fut, dataset, number) in pending.items():
            if fut.cancel():
                self._interrupt(job_id, dataset, number, "interrupted: the server stopped before the collect started")
                marked += 1
        running = {job_id: v for job_id, v in pending.items() if not v[0].cancelled()}
        if running:
            log.info("waiting up to %.0f s for %d running collect(s) to finish", grace, len(running))
            wait_futures([v[0] for v in running.values()], timeout=grace)
        for job_id, (fut, dataset, number) in running.items():
            if not fut.done():
                self._interrupt(job_id, dataset, number, "interrupted: the server stopped during the collect")
                marked += 1
        self.pool.shutdown(wait=False, cancel_futures=True)
        return marked
