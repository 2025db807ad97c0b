"""REST collect of observations on a real server (SQLite): a filtered collect gives a ready
version whose patches all satisfy the filters; an out-of-domain request is a 422; so is a
selection with no patch (the format's pre-check), before any version is allocated."""

from __future__ import annotations

import httpx
import pytest
from registry_fixtures import drop_backend, make_backend, start_server, wait_job

from astrobio.stores.observation import open_observations

pytest.importorskip("astropy")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    work = tmp_path_factory.mktemp("obs-api")
    b = make_backend("sqlite", work / "home")
    (work / "sources").mkdir()
    server = start_server(b, [work / "sources"])
    yield {"server": server, "write": b.key("write", "writer"), "read": b.key("read", "reader")}
    server.stop()
    drop_backend(b)


def _post(api, body):
    return httpx.post(f"{api['server'].api}/datasets/collect", json=body, headers={"X-API-Key": api["write"]}, timeout=30)


def test_filtered_collect_is_ready_and_every_patch_satisfies_it(api) -> None:
    body = {"format": "observations", "dataset": "ztf-alerts", "products": ["alert"], "patch_size": 16,
            "start": "2020-01-01", "end": "2024-06-30", "confidence_threshold": 0.95, "surveys": ["ZTF"]}
    r = _post(api, body)
    assert r.status_code == 202, r.text
    job = wait_job(api["server"].api, api["write"], r.json()["job_id"])
    assert job["state"] == "succeeded", job.get("error") or job
    v = httpx.get(f"{api['server'].api}/datasets/ztf-alerts/versions/1", headers={"X-API-Key": api["read"]}, timeout=10).json()
    assert v["status"] == "ready" and v["kind"] == "observation"
    store = open_observations(v["uri"].removeprefix("file://"))
    c = store.columns
    assert len(c) > 0 and set(c["survey"]) == {"ZTF"} and set(c["product"]) == {"alert"}
    assert (c["date"] >= "2020-01-01").all() and (c["date"].str[:10] <= "2024-06-30").all()
    assert (c["confidence"] >= 0.95).all()
    assert store.manifest["request"]["confidence_threshold"] == 0.95  # the request is in the version's store
    q = httpx.get(f"{api['server'].api}/datasets/ztf-alerts/versions/1/quality", headers={"X-API-Key": api["read"]}, timeout=60).json()
    names = {e["expectation"] for e in q["results"]}
    assert {"expect_no_object_leakage", "expect_no_sky_region_leakage", "expect_consistent_labels",
            "expect_survey_coverage", "expect_image_integrity"} <= names


def test_out_of_domain_request_is_422(api) -> None:
    r = _post(api, {"format": "observations", "dataset": "bad", "patch_size": 80})
    assert r.status_code == 422 and "patch_size" in r.text


@pytest.mark.parametrize("field,value", [("confidence_threshold", False), ("seed", True), ("patch_size", "16")])
def test_a_number_given_as_a_string_or_boolean_is_422(api, field, value) -> None:
    """The outside fuzzer's find: `"confidence_threshold": false` was read as 0.0 and collected."""
    r = _post(api, {"format": "observations", "dataset": "typed", field: value})
    assert r.status_code == 422, r.text
    assert field in r.text and "a number is expected" in r.text
    v = httpx.get(f"{api['server'].api}/datasets/typed", headers={"X-API-Key": api["read"]}, timeout=10)
    assert v.status_code == 404


@pytest.mark.parametrize("filters", [{"products": ["alert"], "start": "2030-01-01"},
                                     {"products": ["image"], "anomaly_types": ["no-such-class"]}])
def test_empty_selection_is_422_and_allocates_no_version(api, filters) -> None:
    r = _post(api, {"format": "observations", "dataset": "empty", **filters})
    assert r.status_code == 422, r.text
    assert "selection is empty" in r.json()["detail"] or "selection is empty" in r.text
    v = httpx.get(f"{api['server'].api}/datasets/empty", headers={"X-API-Key": api["read"]}, timeout=10)
    assert v.status_code == 404  # nothing was queued, no version allocated
