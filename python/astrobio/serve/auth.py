"""X-API-Key authentication as a FastAPI security dependency: 401 for a missing or unknown
key, 403 for a revoked key or one without the scope. Keys never reach a log or a message."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from ..registry.keys import KeyCheck, check_key

__all__ = ["require", "API_KEY_HEADER"]

API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="key from `astrobio keys create NAME`")


def require(scope: str) -> Callable[..., KeyCheck]:
    """Dependency: the request carries a valid, unrevoked key with `scope` ("read"/"write")."""

    def dependency(request: Request, key: str | None = Security(API_KEY_HEADER)) -> KeyCheck:
        if not key:
            raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "APIKey"})
        result = check_key(request.app.state.registry, key)
        if result.status == "unknown":
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "APIKey"})
        if result.status == "revoked":
            raise HTTPException(403, f"API key {result.key_id} is revoked")
        if scope not in result.scopes:
            raise HTTPException(403, f"API key {result.key_id} lacks the {scope!r} scope")
        return result

    return dependency
