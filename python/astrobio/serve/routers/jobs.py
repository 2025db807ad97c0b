"""GET /jobs/{id}: state and progress of a background collect."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from ..auth import require
from ..problems import errors
from ..schemas import JobOut

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobOut, dependencies=[Depends(require("read"))],
            responses=errors(401, 403, 404, 422, 500, 503))
def get_job(request: Request, job_id: str = Path(pattern=r"^[0-9a-f]{32}$")) -> dict:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job
