"""The REST service: `create_app(settings)` builds a FastAPI app over the registry, `/api/v1`.

Errors from astrobio map onto HTTP: DataNotFoundError 404, IntegrityError 409 (a store that
is no longer what was registered), ConfigError 422. OpenAPI schema at /openapi.json, docs at
/docs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .._version import __version__
from ..errors import AstrobioError, ConfigError, DataNotFoundError, IntegrityError
from ..registry.core import Registry
from .jobs import JobRunner
from .limits import BodyLimit
from .routers import datasets, jobs
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
        app.state.registry, app.state.jobs, app.state.settings = reg, runner, settings
        try:
            yield
        finally:
            runner.shutdown()

    app = FastAPI(title="astrobio registry", version=__version__, lifespan=lifespan,
                  description="Versioned, verified training datasets: collect, list, quality, load. "
                              "Every endpoint needs an X-API-Key header (`astrobio keys create NAME`).")
    app.include_router(datasets.router, prefix=API_PREFIX)
    app.include_router(jobs.router, prefix=API_PREFIX)
    statuses = ((DataNotFoundError, 404), (IntegrityError, 409), (ConfigError, 422), (AstrobioError, 400))

    @app.exception_handler(AstrobioError)
    async def astrobio_error(_request: Request, exc: AstrobioError) -> JSONResponse:
        status = next(code for cls, code in statuses if isinstance(exc, cls))
        return JSONResponse({"detail": f"{type(exc).__name__}: {exc}"}, status_code=status)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
