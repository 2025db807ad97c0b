"""The REST service: `create_app(settings)` builds a FastAPI app over the registry, `/api/v1`,
and the dataset pages for people at `/` (pages.py).

Every error is a problem-details answer declared in the OpenAPI schema (problems.py): astrobio's
DataNotFoundError 404, IntegrityError 409 (a store that is no longer what was registered),
ConfigError 422, a database that cannot be reached 503. Every answer carries an X-Request-ID;
every 5xx is logged with its traceback under it (observe.py). OpenAPI schema at /openapi.json,
docs at /docs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from .._version import __version__
from ..registry.collect import store_root
from ..registry.core import Registry
from .jobs import JobRunner, sweep_temporaries
from .limits import BodyLimit
from .observe import REQUEST_ID_HEADER, RequestContext
from .problems import install_handlers
from .routers import datasets, health, jobs, pages
from .settings import Settings

__all__ = ["create_app", "API_PREFIX"]

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    started = dt.datetime.now(dt.timezone.utc)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reg = Registry(settings.database_url)
        runner = JobRunner(reg, [p.resolve() for p in settings.source_roots], settings.store_root, settings.collect_workers)
        stale = reg.fail_stale(started) + runner.fail_stale(started)
        if stale:
            log.warning("marked %d interrupted collects (versions and jobs) as failed", stale)
        swept = sweep_temporaries(settings.store_root or store_root())
        if swept:
            log.warning("removed %d temporary folders of interrupted collects: %s", len(swept), ", ".join(p.name for p in swept))
        app.state.registry, app.state.jobs, app.state.settings = reg, runner, settings
        try:
            yield
        finally:
            marked = runner.shutdown(settings.shutdown_grace)
            if marked:
                log.warning("stopping: marked %d unfinished collect(s) failed", marked)

    app = FastAPI(title="astrobio registry", version=__version__, lifespan=lifespan,
                  description="Versioned, verified training datasets: collect, list, quality, load. "
                              "Every endpoint but /health and /ready needs an X-API-Key header "
                              "(`astrobio keys create NAME`). Errors are RFC 9457 problem details "
                              f"(`application/problem+json`); every answer carries `{REQUEST_ID_HEADER}`. "
                              f"Request bodies are limited to {settings.max_body_bytes} bytes (413 beyond).")
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(datasets.router, prefix=API_PREFIX)
    app.include_router(jobs.router, prefix=API_PREFIX)
    app.include_router(pages.router)
    install_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)  # added last: outermost, so every answer gets its id
    app.openapi = lambda: _openapi(app, settings)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema plus what the server enforces beyond the models: the body limit on
    every operation with a body, and the X-Request-ID header on every answer."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    rid = {"description": "the request id (the client's, when sane, else a new one); 5xx are logged under it",
           "schema": {"type": "string"}}
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            if "requestBody" in op:
                op["x-max-body-bytes"] = settings.max_body_bytes
                op["requestBody"]["description"] = f"at most {settings.max_body_bytes} bytes (413 beyond)"
            for resp in op.get("responses", {}).values():
                resp.setdefault("headers", {})[REQUEST_ID_HEADER] = rid
    app.openapi_schema = schema
    return schema
