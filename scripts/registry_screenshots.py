"""Screenshots of the registry's dataset pages for docs/registry.md, from headless Chromium
(Debian's package, driven over the DevTools pipe by tests/cdp_pipe.py): signs in through the
form with a read key, then captures the dataset list, a version and its quality report.

    ASTROBIO_HOME=... python scripts/registry_screenshots.py --ref default-climate@v1 --out docs/images
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cdp_pipe import Browser  # noqa: E402
from registry_fixtures import Backend, start_server  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="the version to show, NAME@vN")
    p.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = p.parse_args()
    from astrobio._home import data_home
    from astrobio.registry._db import database_url
    from astrobio.registry.keys import create_key, revoke_key
    from astrobio.registry import open_registry

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name, number = args.ref.split("@v")
    reg = open_registry()
    key = create_key(reg, "screenshots", "read")[0]
    server = start_server(Backend("local", database_url(), data_home()), [], log_name="screenshots.log")
    browser = Browser(width=1200)
    try:
        tab = browser.tab()
        browser.goto(tab, server.base + "/login")
        browser.eval(tab, f"document.getElementById('key').value = {key!r}; document.querySelector('form').submit()")
        browser.wait_loaded(tab)
        for path, file in (("/", "registry-datasets.png"), (f"/datasets/{name}/v{number}", "registry-version.png"),
                           (f"/datasets/{name}/v{number}/quality", "registry-quality.png")):
            assert browser.goto(tab, server.base + path) == 200, path
            print(browser.screenshot(tab, out / file))
    finally:
        browser.close()
        server.stop()
        revoke_key(reg, "screenshots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
