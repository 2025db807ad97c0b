"""Datasets and their versions: list, get, quality (JSON or HTML), load, collect."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse

from ...errors import AstrobioError, ConfigError, first_line
from ...registry.collect import confine, precheck, sources_of
from ..auth import require
from ..problems import errors
from ..schemas import CollectAccepted, CollectRequest, DatasetOut, DatasetSummary, LoadOut, VersionOut

router = APIRouter(prefix="/datasets", tags=["datasets"])
log = logging.getLogger(__name__)

NameParam = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="dataset name")
VersionParam = Path(pattern=r"^v?[0-9]{1,9}$", description="version number (3 or v3)")


# what each kind of operation can answer besides its success (declared in the schema)
READ = errors(401, 403, 404, 422, 500, 503)
READ_LIST = errors(401, 403, 500, 503)
WRITE = errors(400, 401, 403, 413, 422, 500, 503)


def _ref(name: str, v: str) -> str:
    return f"{name}@v{int(v.removeprefix('v'))}"


def _reason(e: Exception) -> str:
    """Why the OS refused a path, without echoing the path (it names the server's folders)."""
    return e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__


def _unstorable(value: Any, loc: list[str | int]) -> list[str | int] | None:
    """The location of the first string (key or value) the database cannot hold: a NUL or a
    lone UTF-16 surrogate (PostgreSQL refuses both in text and JSON)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return loc
        return loc if "\0" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _unstorable(k, [*loc, str(k)]) or _unstorable(v, [*loc, str(k)])
            if bad:
                return bad
    if isinstance(value, list):
        for i, v in enumerate(value):
            bad = _unstorable(v, [*loc, i])
            if bad:
                return bad
    return None


@router.get("", response_model=list[DatasetSummary], dependencies=[Depends(require("read"))], responses=READ_LIST)
def list_datasets(request: Request) -> list[dict[str, Any]]:
    return request.app.state.registry.datasets()


@router.post("/collect", response_model=CollectAccepted, status_code=202, dependencies=[Depends(require("write"))],
             responses=WRITE)
def collect(request: Request, body: Annotated[CollectRequest, Body(discriminator="format")]) -> dict[str, Any]:
    """Ingest the named sources into a new version of `dataset`, in the background; poll
    `GET /jobs/{job_id}`. Source paths must lie inside the server's source roots."""
    spec = body.model_dump(by_alias=True)
    bad = _unstorable(spec, ["body"])
    if bad:
        raise HTTPException(422, [{"loc": bad, "msg": "text with a NUL character or a lone surrogate", "type": "value_error.text"}])
    roots = request.app.state.settings.source_roots
    refused, paths = [], {}
    for field, path in sources_of(spec).items():
        try:
            paths[field] = confine(path, roots)
        except ConfigError as e:
            refused.append({"loc": ["body", *field.split(".", 1)], "msg": str(e), "type": "value_error.source_path"})
        except (OSError, ValueError) as e:  # ENAMETOOLONG, ELOOP, EACCES, an unencodable name: the path is refused
            refused.append({"loc": ["body", *field.split(".", 1)], "msg": f"source path cannot be used: {_reason(e)}",
                            "type": "value_error.source_path"})
    if refused:
        raise HTTPException(422, refused)
    try:  # a request that cannot give a store (its filters select nothing) is refused now, not failed later
        precheck(spec, paths)
    except ConfigError as e:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(e), "type": "value_error.selection"}]) from None
    except AstrobioError as e:  # sources unreadable here: the collect itself reports it on its job
        log.warning("collect pre-check skipped: %s", first_line(e))
    number = request.app.state.registry.begin_version(spec["dataset"])
    job_id = request.app.state.jobs.submit(spec, number)
    return {"job_id": job_id, "ref": f"{spec['dataset']}@v{number}", "state": "queued"}


@router.get("/{name}", response_model=DatasetOut, dependencies=[Depends(require("read"))],
            responses=READ)
def get_dataset(request: Request, name: str = NameParam) -> dict[str, Any]:
    return request.app.state.registry.dataset(name)


@router.get("/{name}/versions/{v}", response_model=VersionOut, dependencies=[Depends(require("read"))],
            responses=READ)
def get_version(request: Request, name: str = NameParam, v: str = VersionParam) -> dict[str, Any]:
    return request.app.state.registry.version(_ref(name, v))


@router.get("/{name}/versions/{v}/quality", dependencies=[Depends(require("read"))],
            responses={200: {"content": {"application/json": {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}}},
                       **READ})
def get_quality(request: Request, name: str = NameParam, v: str = VersionParam) -> Any:
    """The quality report: JSON, or a readable page with plots when the client accepts
    text/html (and prefers it over JSON)."""
    reg = request.app.state.registry
    ref = _ref(name, v)
    report = reg.quality(ref)
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept.split("text/html")[0]:
        from ..html import render_quality

        return HTMLResponse(render_quality(report, reg.version(ref, runs=True)))
    return JSONResponse(report)


@router.get("/{name}/versions/{v}/load", response_model=LoadOut, dependencies=[Depends(require("read"))],
            responses=errors(401, 403, 404, 409, 422, 500, 503))
def load(request: Request, name: str = NameParam, v: str = VersionParam) -> dict[str, Any]:
    """URI, digest, kind and manifest summary of a ready version whose store is intact
    (409 with the reason when it was deleted or changed after registration)."""
    return request.app.state.registry.load(_ref(name, v))
