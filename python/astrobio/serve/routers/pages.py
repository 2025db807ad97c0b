"""Dataset pages for people, rendered on the server (no JavaScript): `/` datasets ->
`/datasets/{name}` versions -> `/datasets/{name}/v{N}` one version (status, quality summary,
splits, provenance, the training runs that used it with their held-out metrics) ->
`/datasets/{name}/v{N}/quality` its quality report.

A key is needed like the API: the sign-in form at `/login` checks it and sets it in an
HttpOnly, SameSite=Strict cookie (Secure over HTTPS); an `X-API-Key` header works too. Without
a valid read key every page answers 401 with the sign-in form and no data. Pages are not part
of the API schema."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...errors import DataNotFoundError
from ...registry.keys import check_key
from ..render import render

router = APIRouter(include_in_schema=False)

COOKIE = "astrobio_key"
COOKIE_MAX_AGE = 8 * 3600
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
Name = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
Number = Path(pattern=r"^v[0-9]{1,9}$")


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _key(request: Request) -> str:
    return request.headers.get("x-api-key") or request.cookies.get(COOKIE) or ""


def _can_read(request: Request, key: str) -> bool:
    if not key:
        return False
    check = check_key(request.app.state.registry, key)
    return check.status == "ok" and "read" in check.scopes


def _safe_next(target: str) -> str:
    """Only a path on this server (no scheme, no //host): an open redirect is refused."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _login(request: Request, status: int = 401, error: str = "", next_path: str | None = None) -> HTMLResponse:
    return _page(render("login.html", error=error, next=_safe_next(next_path or request.url.path), signed_in=False), status)


def _guarded(request: Request, build: Any) -> HTMLResponse:
    """The page `build()` renders, for a request with a valid read key; the sign-in form (401)
    otherwise; a page saying so (404) for an unknown dataset or version."""
    if not _can_read(request, _key(request)):
        return _login(request, error="Sign in with an API key to see the registry." if request.url.path != "/" else "")
    try:
        return _page(build())
    except DataNotFoundError as e:
        return _page(render("notfound.html", message=str(e), signed_in=True), 404)


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _login(request, status=200, next_path=request.query_params.get("next", "/"))


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key, target = (form.get("key") or [""])[0].strip(), _safe_next((form.get("next") or ["/"])[0])
    if not _can_read(request, key):
        return _login(request, error="That key is unknown, revoked or lacks the read scope.", next_path=target)
    response = RedirectResponse(target, status_code=303, headers=_HEADERS)
    response.set_cookie(COOKIE, key, max_age=COOKIE_MAX_AGE, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303, headers=_HEADERS)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/")
def datasets_page(request: Request) -> HTMLResponse:
    return _guarded(request, lambda: render("datasets.html", datasets=request.app.state.registry.datasets(), signed_in=True))


@router.get("/datasets/{name}")
def dataset_page(request: Request, name: str = Name) -> HTMLResponse:
    return _guarded(request, lambda: render("dataset.html", ds=request.app.state.registry.dataset(name), signed_in=True))


@router.get("/datasets/{name}/{v}")
def version_page(request: Request, name: str = Name, v: str = Number) -> HTMLResponse:
    def build() -> str:
        reg = request.app.state.registry
        version = reg.version(f"{name}@{v}", runs=True)
        try:
            quality = reg.quality(version["ref"])
        except DataNotFoundError:  # a collecting or failed version has none
            quality = None
        return render("version.html", v=version, q=quality, signed_in=True)

    return _guarded(request, build)


@router.get("/datasets/{name}/{v}/quality")
def quality_page(request: Request, name: str = Name, v: str = Number) -> HTMLResponse:
    from ..html import render_quality

    def build() -> str:
        reg = request.app.state.registry
        ref = f"{name}@{v}"
        return render_quality(reg.quality(ref), reg.version(ref, runs=True), signed_in=True)

    return _guarded(request, build)
