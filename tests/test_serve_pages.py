"""Dataset pages for people: the list, a dataset, a version and its quality report, rendered
by a real uvicorn server over a registry with a real catalogue; refused (401, sign-in form, no
data) without a key; the sign-in form sets an HttpOnly, SameSite=Strict cookie; an X-API-Key
header works too. Driven in headless Chromium (Debian's package) over the DevTools protocol,
with screenshots (set ASTROBIO_SCREENSHOTS=DIR to keep them, as docs/images holds them)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape
from cdp_pipe import CHROMIUM, Browser
from registry_fixtures import BACKENDS, drop_backend, make_backend, real_sources, start_server

from astrobio.ingest.catalogue import ingest_catalogue
from astrobio.registry import lineage
from astrobio.serve.render import cell, tree

PAGES = ["/", "/datasets/planets", "/datasets/planets/v1", "/datasets/planets/v1/quality"]


def _site(kind: str, work: Path):
    b = make_backend(kind, work / "home")
    src = real_sources(work / "sources")
    reg = b.registry()
    reg.register(ingest_catalogue(src["catalogue"], work / "planets.zarr", schema="exoplanet.eu"), "planets")
    # a run recorded the way the trainer records it (its summary's held-out evaluation)
    lineage.record_run("planets@v1", str(work / "runs" / "r1"), {
        "model": "datacube", "best_score": 0.42, "epochs_run": 3, "monitor": "val_loss", "held_out_split": "test",
        "evaluation": {"test": {"model": {"rmse": 0.58}, "baseline": {"rmse": 0.61}, "skill": 0.049}}}, registry=reg)
    server = start_server(b, [])
    return {"b": b, "s": server, "read": b.key("read", "reader"), "work": work}


@pytest.fixture(scope="module", params=BACKENDS)
def site(request, tmp_path_factory):
    s = _site(request.param, tmp_path_factory.mktemp(f"pages-{request.param}"))
    yield s
    s["s"].stop()
    drop_backend(s["b"])


def test_no_page_and_no_data_without_a_key(site):
    base = site["s"].base
    for path in PAGES:
        for headers in ({}, {"X-API-Key": "ab_0000_nope"}, {"Cookie": "astrobio_key=ab_0000_nope"}):
            r = httpx.get(base + path, headers=headers)
            assert r.status_code == 401, (path, r.status_code)
            shown = re.sub(r'name="next" value="[^"]*"', "", r.text)  # the form returns to the page asked for
            assert 'action="/login"' in r.text and "planets" not in shown and "exoplanet" not in shown and "<table" not in shown


def test_pages_with_the_header_are_readable(site):
    base, h = site["s"].base, {"X-API-Key": site["read"]}
    pages = {p: httpx.get(base + p, headers=h, timeout=120) for p in PAGES}  # the quality page draws its plots
    assert all(r.status_code == 200 and r.headers["content-type"].startswith("text/html") for r in pages.values())
    assert "no-store" in pages["/"].headers["cache-control"] and "default-src 'none'" in pages["/"].headers["content-security-policy"]
    assert 'href="/datasets/planets"' in pages["/"].text and 'href="/datasets/planets/v1"' in pages["/datasets/planets"].text
    version = pages["/datasets/planets/v1"].text
    assert "ready" in version and "expectations met" in version and "rmse" in version and "0.58" in version
    quality = pages["/datasets/planets/v1/quality"].text
    assert "\\u003e" not in quality and "&gt;0" in quality  # the split-count row reads >0
    cells = re.findall(r"<td>(.*?)</td>", quality, flags=re.S)
    assert cells and not [c for c in cells if c.lstrip().startswith(("{&#34;", "{\"", "[{"))]  # no raw JSON in a cell
    assert "<script" not in quality.lower()
    assert httpx.get(base + "/datasets/nope", headers=h).status_code == 404


def test_sign_in_sets_an_httponly_samesite_cookie(site):
    base = site["s"].base
    r = httpx.post(base + "/login", data={"key": "ab_0000_nope", "next": "/"})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    r = httpx.post(base + "/login", data={"key": site["read"], "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    with httpx.Client(base_url=base, cookies=r.cookies) as c:
        assert c.get("/datasets/planets/v1").status_code == 200
        out = c.post("/logout")
        assert out.status_code == 303 and 'astrobio_key=""' in out.headers["set-cookie"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium binary absent (Debian: apt-get install chromium; .ci/run installs it)")
def test_headless_chromium_signs_in_and_screenshots_the_pages(tmp_path):
    site = _site("sqlite", tmp_path / "site")  # one browser run; the pages are checked on both backends over HTTP above
    shots = Path(os.environ.get("ASTROBIO_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    base = site["s"].base
    browser = Browser()
    try:
        tab = browser.tab()
        assert browser.goto(tab, base + "/datasets/planets/v1") == 401  # no key: the sign-in form, no data
        assert browser.eval(tab, "document.title").startswith("Sign in")
        assert "planets" not in browser.eval(tab, "document.body.innerText")
        browser.eval(tab, f"document.getElementById('key').value = {site['read']!r}; document.querySelector('form').submit()")
        browser.wait_loaded(tab)
        assert browser.eval(tab, "location.pathname") == "/datasets/planets/v1"
        cookie = next(c for c in browser.cookies(tab, base) if c["name"] == "astrobio_key")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "astrobio_key" not in browser.eval(tab, "document.cookie")  # HttpOnly: scripts cannot read it
        for path, name in (("/", "registry-datasets.png"), ("/datasets/planets/v1", "registry-version.png"),
                           ("/datasets/planets/v1/quality", "registry-quality.png")):
            assert browser.goto(tab, base + path) == 200
            text = browser.eval(tab, "document.body.innerText")
            assert "planets" in text and "\\u003e" not in text
            png = browser.screenshot(tab, shots / name)
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        fresh = browser.tab()  # a second tab shares the cookie jar; clear it: signed out again
        browser.call("Network.clearBrowserCookies", session=fresh)
        assert browser.goto(fresh, base + "/") == 401
    finally:
        browser.close()
        site["s"].stop()
        drop_backend(site["b"])


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=20)


@given(_json)
@settings(max_examples=200, deadline=None)
def test_report_values_render_readable_and_escaped(value):
    """Whatever a report holds: no raw JSON, no markup from the data, and every string shown."""
    for html in (str(cell(value)), str(tree(value))):
        assert "<script" not in html and '{"' not in html and "\\u003e" not in html
        stripped = re.sub(r"<[^>]*>", "", html)  # the text a person reads
        assert "<" not in stripped and ">" not in stripped  # data's angle brackets arrive escaped
    if isinstance(value, str) and value:
        assert str(escape(value)) in str(cell(value))
