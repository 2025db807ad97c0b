"""The REST API over HTTP: a real uvicorn server (subprocess, 127.0.0.1, free port) on SQLite
and PostgreSQL; collect real sources, list, get, quality (JSON and HTML), load, the Client."""

from __future__ import annotations

import httpx
import pytest
from conftest import build_fixture
from registry_fixtures import BACKENDS, drop_backend, make_backend, real_sources, start_server, wait_job

import astrobio
from astrobio.registry import Client
from astrobio.registry.client import RegistryHTTPError


@pytest.fixture(scope="module", params=BACKENDS)
def api(request, tmp_path_factory):
    """One server per backend for the module, with a read key, a write key and real sources."""
    work = tmp_path_factory.mktemp(f"api-{request.param}")
    b = make_backend(request.param, work / "home")
    sources = real_sources(work / "sources")
    server = start_server(b, [work / "sources"])
    yield {"backend": b, "server": server, "read": b.key("read", "reader"), "write": b.key("write", "writer"),
           "sources": sources, "work": work}
    server.stop()
    drop_backend(b)


def _collect(api, body, key=None):
    r = httpx.post(f"{api['server'].api}/datasets/collect", json=body, headers={"X-API-Key": key or api["write"]}, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()


def test_collect_catalogue_then_list_get_quality_load(api):
    s, src = api["server"], api["sources"]
    acc = _collect(api, {"format": "catalogue", "dataset": "planets", "source": src["catalogue"].name, "schema": "exoplanet.eu"})
    job = wait_job(s.api, api["read"], acc["job_id"])
    assert job["state"] == "succeeded", job
    assert job["ref"] == acc["ref"] == "planets@v1"
    h = {"X-API-Key": api["read"]}
    names = [d["name"] for d in httpx.get(f"{s.api}/datasets", headers=h).json()]
    assert "planets" in names
    ds = httpx.get(f"{s.api}/datasets/planets", headers=h).json()
    assert ds["versions"][0]["status"] == "ready" and ds["versions"][0]["kind"] == "table"
    v = httpx.get(f"{s.api}/datasets/planets/versions/v1", headers=h).json()
    assert v["ref"] == "planets@v1" and v["provenance"]["kind"] == "observation"
    q = httpx.get(f"{s.api}/datasets/planets/versions/1/quality", headers=h)
    assert q.headers["content-type"].startswith("application/json") and q.json()["statistics"]["evaluated_expectations"] > 5
    page = httpx.get(f"{s.api}/datasets/planets/versions/1/quality", headers={**h, "Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "planets@v1" in page.text and "data:image/png;base64," in page.text and "<script" not in page.text.lower()
    load = httpx.get(f"{s.api}/datasets/planets/versions/1/load", headers=h).json()
    assert load["kind"] == "table" and load["digest"] == v["digest"] and load["summary"]["n_rows"] > 1000
    with Client(s.base, api_key=api["read"]) as c:
        df, manifest = c.open("planets@v1")
        assert len(df) == manifest["n_rows"] == load["summary"]["n_rows"]


def test_collect_climate_netcdf_and_metabolic_model(api):
    s, src = api["server"], api["sources"]
    a = _collect(api, {"format": "climate", "dataset": "ncep-hgt", "runs": {"djf": src["hgt"].name}, "variables": ["z"],
                       "units": {"z": "m"}, "kind": "observation"})
    b = _collect(api, {"format": "metabolic", "dataset": "ecoli", "models": {"e_coli_core": src["textbook"].name}})
    for acc in (a, b):
        assert wait_job(s.api, api["read"], acc["job_id"])["state"] == "succeeded"
    with Client(s.base, api_key=api["read"]) as c:
        store = c.open(a["ref"])
        assert isinstance(store, astrobio.Store) and store.variables[0].name == "z" and store.variables[0].units == "m"
        assert c.version(a["ref"])["kind"] == "cube" and c.quality(a["ref"])["success"]
        graphs = c.open(b["ref"])
        assert graphs["e_coli_core"].num_reactions == 95


def test_client_opens_a_registered_cube_store(api, tmp_path):
    b = api["backend"]
    fx = build_fixture(tmp_path / "fx.zarr")
    ref = b.registry().register(fx.path, "fixture")["ref"]
    with Client(api["server"].base, api_key=api["read"]) as c:
        store = c.open(ref)
        assert store.n_samples == 12 and c.load(ref)["summary"]["variables"] == ["var0", "var1", "var2"]
        with pytest.raises(RegistryHTTPError) as e:  # a read key cannot collect
            c.collect({"format": "catalogue", "dataset": "planets2", "source": api["sources"]["catalogue"].name})
        assert e.value.status == 403


def test_openapi_schema_and_docs_stay_on(api):
    s = api["server"]
    schema = httpx.get(s.base + "/openapi.json").json()
    assert {"/api/v1/datasets", "/api/v1/datasets/collect", "/api/v1/jobs/{job_id}",
            "/api/v1/datasets/{name}/versions/{v}/quality", "/api/v1/datasets/{name}/versions/{v}/load"} <= set(schema["paths"])
    assert "APIKeyHeader" in schema["components"]["securitySchemes"]
    assert httpx.get(s.base + "/docs").status_code == 200
