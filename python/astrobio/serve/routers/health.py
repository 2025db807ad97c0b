"""Liveness and readiness, without a key (for load balancers and orchestrators): `GET /health`
answers 200 while the process serves; `GET /ready` 200 when the registry database answers a
query, 503 (problem details) when it does not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from ..._version import __version__
from ..problems import errors

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str
    version: str


class ReadyOut(BaseModel):
    status: str
    database: str


@router.get("/health", response_model=HealthOut, responses=errors(500))
def health() -> dict[str, Any]:
    """Liveness: the process is up and serving."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", response_model=ReadyOut, responses=errors(500, 503))
def ready(request: Request) -> dict[str, Any]:
    """Readiness: the registry database answers (`SELECT 1`); 503 otherwise."""
    engine = request.app.state.registry.engine
    with engine.connect() as conn:  # an unreachable database raises; the handler answers 503
        conn.execute(text("SELECT 1")).scalar_one()
    return {"status": "ready", "database": engine.dialect.name}
