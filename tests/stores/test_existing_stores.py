"""Stores written by the code before the stores package still open and verify.

The manifests of `data/` pin the digests (test_kinds.py); this test goes further when the
stores themselves are at hand: set ASTROBIO_MAIN_STORES to a folder of stores written by the
old code (the redesign's check used /tmp/main-stores) and every one must open, pass its kind's
full verification and keep its recorded content digest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from astrobio.stores import KINDS, format_of
from astrobio.validate import check_store

ROOT = os.environ.get("ASTROBIO_MAIN_STORES")
MAIN_DIGESTS = json.loads((Path(__file__).parent / "data" / "main_digests.json").read_text())


@pytest.mark.skipif(not ROOT, reason="set ASTROBIO_MAIN_STORES to a folder of stores written by the old code")
@pytest.mark.parametrize("name", sorted(MAIN_DIGESTS))
def test_old_store_opens_and_verifies(name: str) -> None:
    path = Path(str(ROOT)) / name
    if not path.is_dir():
        pytest.skip(f"{path} is not there")
    check = check_store(path)
    assert check.ok, check
    manifest = json.loads((path / "zarr.json").read_text())["attributes"]["astrobio"]
    assert KINDS[format_of(path)].digest(manifest) == MAIN_DIGESTS[name] == manifest["content_digest"]
