"""One error model for the whole API: RFC 9457 problem details (`application/problem+json`).

Every route declares the statuses it can answer with `responses=errors(...)`, so clients
generated from the OpenAPI schema handle them, and a schema-driven fuzzer can hold the server
to it. The handlers here turn every error into that shape: HTTP errors, request validation
(422 naming the field in `errors[].loc`), astrobio's errors (DataNotFoundError 404,
IntegrityError 409, ConfigError 422, others 400) and a database that cannot be reached (503,
with Retry-After). Anything else is a 500 from the request-context middleware (observe.py).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DatabaseError, DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AstrobioError, ConfigError, DataNotFoundError, IntegrityError, first_line

__all__ = ["Problem", "FieldError", "errors", "problem_response", "install_handlers", "PROBLEM_TYPE", "request_id_of"]

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
RETRY_AFTER_S = 5

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           406: "Not Acceptable", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
           422: "Unprocessable Content", 500: "Internal Server Error", 503: "Service Unavailable"}

_WHEN = {400: "the request body could not be read",
         401: "missing or unknown X-API-Key",
         403: "revoked key, or a key without the scope this operation needs",
         404: "no such dataset, version or job",
         409: "the version's store was deleted or changed after registration (the reason is in `detail`)",
         413: "request body over the server's limit (`x-max-body-bytes` of the operation; 64 KiB by default)",
         422: "a field is missing, unknown or invalid, or a source path is refused (`errors[].loc` names the field)",
         500: "an unexpected server error; logged with its traceback under the `X-Request-ID` it returns",
         503: "the registry database cannot be reached; retry after `Retry-After` seconds"}


class FieldError(BaseModel):
    """One invalid field: where (`loc`, e.g. ["body", "runs", "djf"]), why, and the error type."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus the request id (also in the X-Request-ID header) and,
    for 422, the invalid fields."""

    type: str = Field(default="about:blank", description="a URI naming the problem type")
    title: str = Field(description="the HTTP status phrase")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong, for a person")
    instance: str = Field(default="", description="the request path")
    request_id: str = Field(default="", description="the X-Request-ID of this request")
    errors: list[FieldError] = Field(default_factory=list, description="invalid fields (422)")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry of a route that can answer with `codes` (problem details)."""
    ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {c: {"model": Problem, "description": _WHEN.get(c, _TITLES.get(c, "error")),
                "content": {PROBLEM_TYPE: ref}} for c in codes}


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or request.scope.get("state", {}).get("request_id", ""))


def problem_response(request: Request | None, status: int, detail: str, *, field_errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    rid = request_id_of(request) if request is not None else ""
    body = Problem(title=_TITLES.get(status, "Error"), status=status, detail=detail,
                   instance=request.url.path if request is not None else "", request_id=rid,
                   errors=[FieldError(**e) for e in field_errors or []])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def _field_errors(raw: Any) -> list[dict[str, Any]]:
    """pydantic / route errors -> FieldError dicts (inputs and contexts dropped: they may echo
    a secret or not be JSON)."""
    out = []
    for e in raw if isinstance(raw, list) else []:
        if isinstance(e, dict):
            loc = [x if isinstance(x, int) else str(x) for x in e.get("loc", [])]
            out.append({"loc": loc, "msg": str(e.get("msg", "")), "type": str(e.get("type", "value_error"))})
    return out


_ASTROBIO_STATUS = ((DataNotFoundError, 404), (IntegrityError, 409), (ConfigError, 422), (AstrobioError, 400))


def install_handlers(app: FastAPI) -> None:
    """Register the problem-details handlers on `app`."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        fields = _field_errors(exc.detail)
        detail = "; ".join(f"{'.'.join(map(str, f['loc']))}: {f['msg']}" for f in fields) if fields else str(exc.detail)
        return problem_response(request, exc.status_code, detail, field_errors=fields, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc.errors())
        detail = "; ".join(f"{'.'.join(map(str, f['loc']))}: {f['msg']}" for f in fields) or "invalid request"
        return problem_response(request, 422, detail, field_errors=fields)

    @app.exception_handler(AstrobioError)
    async def astrobio_error(request: Request, exc: AstrobioError) -> JSONResponse:
        status = next(code for cls, code in _ASTROBIO_STATUS if isinstance(exc, cls))
        return problem_response(request, status, f"{type(exc).__name__}: {exc}")

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        # the URL and driver message may name hosts or users: logged, not returned
        log.error("registry database unavailable (request %s): %s", request_id_of(request), first_line(exc))
        return problem_response(request, 503, "the registry database cannot be reached; try again shortly",
                                headers={"Retry-After": str(RETRY_AFTER_S)})

    for cls in (OperationalError, InterfaceError, PoolTimeout, DatabaseError):
        app.add_exception_handler(cls, database_down)

    @app.exception_handler(DataError)
    async def database_refused(request: Request, exc: DataError) -> JSONResponse:
        # a value the database refuses; inputs are checked before they reach it, so this is the
        # last line: a 4xx, never a 500
        log.warning("database refused a value (request %s): %s", request_id_of(request), first_line(exc))
        return problem_response(request, 422, "a value in the request cannot be stored by the registry database")
