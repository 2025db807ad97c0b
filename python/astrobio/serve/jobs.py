"""Background collect jobs: a small thread pool; every state change is written to the jobs
table, so `GET /jobs/{id}` answers from the database (and after a restart)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from ..errors import AstrobioError, first_line
from ..registry._db import read_session, write_session
from ..registry.collect import collect_into
from ..registry.core import Registry, _iso
from ..registry.models import Job, utcnow

__all__ = ["JobRunner", "job_dict"]

log = logging.getLogger(__name__)


def job_dict(j: Job) -> dict[str, Any]:
    return {"id": j.id, "dataset": j.dataset, "version": j.version_number,
            "ref": f"{j.dataset}@v{j.version_number}" if j.version_number else None, "state": j.state,
            "progress": j.progress, "error": j.error, "created": _iso(j.created), "updated": _iso(j.updated)}


class JobRunner:
    def __init__(self, reg: Registry, roots: list[Path], store_root: Path | None, workers: int) -> None:
        self.reg, self.roots, self.store_root = reg, roots, store_root
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="collect")

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
        self.pool.submit(self._run, job_id, spec, number)
        return job_id

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

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
