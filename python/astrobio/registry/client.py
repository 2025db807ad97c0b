"""`Client`: a registry served by `astrobio serve`, from Python (httpx).

>>> c = Client("http://127.0.0.1:8000", api_key=os.environ["ASTROBIO_API_KEY"])  # doctest: +SKIP
>>> store = c.open("climate@v3")        # astrobio.Store, digest-checked       # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from ..errors import AstrobioError, ConfigError, DataNotFoundError, IntegrityError
from ._scan import digest_check, open_by_kind
from .core import parse_ref

__all__ = ["Client", "RegistryHTTPError"]


class RegistryHTTPError(AstrobioError):
    """The service answered with an error status (the message carries its detail)."""

    def __init__(self, status: int, detail: Any) -> None:
        self.status = status
        super().__init__(f"registry service answered {status}: {detail}")


class Client:
    """`base_url` of the service (without /api/v1); `api_key` (default $ASTROBIO_API_KEY)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        key = api_key or os.environ.get("ASTROBIO_API_KEY")
        if not key:
            raise ConfigError("the registry client needs an API key (api_key=... or $ASTROBIO_API_KEY)")
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", headers={"X-API-Key": key}, timeout=timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ConfigError(f"cannot reach the registry service ({type(e).__name__}: {e})") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text[:200]
            if r.status_code == 404:
                raise DataNotFoundError(str(detail), hint="")
            if r.status_code == 409:
                raise IntegrityError(str(detail))
            raise RegistryHTTPError(r.status_code, detail)
        return r.json()

    @staticmethod
    def _path(ref: str) -> str:
        name, number = parse_ref(ref)
        if number is None:
            raise ConfigError(f"{ref!r}: name the version (NAME@vN)")
        return f"/datasets/{name}/versions/{number}"

    def datasets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/datasets")

    def dataset(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{name}")

    def version(self, ref: str) -> dict[str, Any]:
        return self._call("GET", self._path(ref))

    def quality(self, ref: str) -> dict[str, Any]:
        return self._call("GET", self._path(ref) + "/quality")

    def load(self, ref: str) -> dict[str, Any]:
        """URI, digest, kind and manifest summary (the service checked the store first)."""
        return self._call("GET", self._path(ref) + "/load")

    def open(self, ref: str) -> Any:
        """The version's store, opened with astrobio's reader for its kind, after checking
        here too that the bytes at the URI are the registered ones: `astrobio.Store` (cube),
        (DataFrame, manifest) (table) or {name: MetabolicGraph} (graph)."""
        info = self.load(ref)
        problem = digest_check(info["uri"], info["digest"], info["kind"])
        if problem:
            raise IntegrityError(f"{ref}: {problem}")
        return open_by_kind(info["uri"], info["kind"], verify=False)

    def collect(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start a collect (see the API's CollectRequest); returns {job_id, ref, state}."""
        return self._call("POST", "/datasets/collect", json=request)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def wait(self, job_id: str, timeout: float = 600.0, poll: float = 0.5) -> dict[str, Any]:
        """Poll a job until it succeeded or failed (ConfigError after `timeout` seconds)."""
        end = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in ("succeeded", "failed"):
                return job
            if time.monotonic() > end:
                raise ConfigError(f"job {job_id} still {job['state']} after {timeout:.0f} s")
            time.sleep(poll)
