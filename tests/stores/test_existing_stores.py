"""Stores written by the code before the stores package still open and verify.

`data/old_stores.tar.gz` holds four small stores written by main's code before the redesign (a
fixture cube, the e_coli_core graphs, the exoplanet.eu and NASA catalogue tables, 350 kB packed);
`data/main_digests.json` the content digests that code recorded. Every one must open, pass its
kind's full verification and keep its recorded digest under today's one digest rule.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from astrobio.stores import kind_of
from astrobio.validate import check_store

DATA = Path(__file__).parent / "data"
MAIN_DIGESTS = json.loads((DATA / "main_digests.json").read_text())
OLD_STORES = ["fixture_cube.zarr", "graph_ecoli.zarr", "table_eu.zarr", "table_nasa.zarr"]


@pytest.fixture(scope="module")
def old_stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("old-stores")
    with tarfile.open(DATA / "old_stores.tar.gz") as tar:
        tar.extractall(root, filter="data")
    return root


@pytest.mark.parametrize("name", OLD_STORES)
def test_old_store_opens_and_verifies(old_stores: Path, name: str) -> None:
    path = old_stores / name
    check = check_store(path)
    assert check.ok, check
    manifest = json.loads((path / "zarr.json").read_text())["attributes"]["astrobio"]
    assert kind_of(path).digest(manifest) == MAIN_DIGESTS[name] == manifest["content_digest"]


def test_a_changed_old_store_fails_its_digest(old_stores: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "table.zarr"
    shutil.copytree(old_stores / "table_nasa.zarr", copy)
    meta = copy / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["astrobio"]["rows"] = doc["attributes"]["astrobio"].get("rows", 0) + 1
    meta.write_text(json.dumps(doc))
    assert not check_store(copy).ok
