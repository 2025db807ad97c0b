"""Request context as plain ASGI middleware, outermost: a request id (the client's
`X-Request-ID` when it is a sane token, else a new one) returned in the `X-Request-ID` header of
every answer; one JSON access-log line per request; and the last line of defence: an exception
nothing else handled is logged with its traceback and request id and answered as a 500 problem.

Access lines carry method, path (no query string), status, duration and client; never a
header, so keys never reach a log."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

__all__ = ["RequestContext", "JsonFormatter", "REQUEST_ID_HEADER", "log_config"]

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")

access_log = logging.getLogger("astrobio.serve.access")
error_log = logging.getLogger("astrobio.serve.error")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields
    (`request_id`, `method`, `path`, ...) and the traceback when there is one."""

    _SKIP = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in self._SKIP})
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class RequestContext:
    """See the module docstring. `scope["state"]["request_id"]` holds the id for the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), b"")
        rid = given.decode() if _SANE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = [0]
        t0 = time.perf_counter()

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"),
                                extra={"request_id": rid, "method": scope.get("method"), "path": scope.get("path")})
            if status[0]:  # the answer had started: nothing more can be said to the client
                return
            await self._server_error(send_with_id, scope, rid)
        finally:
            client = scope.get("client") or ("", 0)
            access_log.info("%s %s %s", scope.get("method"), scope.get("path"), status[0] or 500,
                            extra={"request_id": rid, "method": scope.get("method"), "path": scope.get("path"),
                                   "status": status[0] or 500, "duration_ms": round(1000 * (time.perf_counter() - t0), 2),
                                   "client": client[0]})

    @staticmethod
    async def _server_error(send: Any, scope: dict[str, Any], rid: str) -> None:
        body = json.dumps({"type": "about:blank", "title": "Internal Server Error", "status": 500,
                           "detail": f"unexpected server error; it is logged under request id {rid}",
                           "instance": scope.get("path", ""), "request_id": rid, "errors": []}).encode()
        await send({"type": "http.response.start", "status": 500,
                    "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's `log_config`: every line (uvicorn's own, astrobio's, the access log) as JSON on
    stderr; uvicorn's own access log is off (RequestContext writes a richer one)."""
    lvl = level.upper()
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
            "loggers": {"uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
                        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
                        "astrobio": {"handlers": ["stderr"], "level": lvl, "propagate": False}}}
