"""The store-kinds registry (`astrobio.stores.kinds`) and the one content-digest rule.

`data/*.manifest.json` are manifests of stores written by the code before the stores package
(main at 9565372: the fixture cube store, the NCEP reanalysis cube, both real catalogue tables,
the e_coli_core graph store); `data/main_digests.json` holds the content digests that code
recorded. The unified rule must give exactly those digests, or every existing store would fail
its verification.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import astrobio
from astrobio.stores import StoreKind, format_of, get_kind, kind_names, kind_of_format
from astrobio.stores._group import BUILD_FIELDS, GroupWriter, content_digest
from astrobio.stores.cube import UNDIGESTED
from astrobio.validate import check_store

DATA = Path(__file__).parent / "data"
MAIN_DIGESTS = json.loads((DATA / "main_digests.json").read_text())


@pytest.mark.parametrize("store", sorted(MAIN_DIGESTS))
def test_unified_rule_gives_the_digests_existing_stores_recorded(store: str) -> None:
    manifest = json.loads((DATA / store.replace(".zarr", ".manifest.json")).read_text())
    kind = kind_of_format(manifest["format"])
    assert kind.digest(manifest) == MAIN_DIGESTS[store] == manifest["content_digest"]


def test_registry_holds_every_kind_under_its_one_name_and_its_older_formats() -> None:
    assert {"cube", "table", "graph"} <= set(kind_names())
    for old, name in (("astrobio.store", "cube"), ("astrobio.table", "table"), ("astrobio.graphs", "graph")):
        kind = get_kind(name)
        assert isinstance(kind, StoreKind) and kind.name == name
        assert kind_of_format(old) is kind and kind_of_format(name) is kind and old in kind.formats


def test_an_unknown_kind_or_format_is_refused_in_one_line() -> None:
    for call, arg in ((get_kind, "cubes"), (kind_of_format, "astrobio.other"), (kind_of_format, None)):
        with pytest.raises(astrobio.ConfigError) as e:
            call(arg)
        assert "\n" not in str(e.value) and "known kinds: " in str(e.value) and "cube" in str(e.value)


def test_digest_leaves_out_the_build_record_and_the_kinds_derived_fields() -> None:
    manifest = json.loads((DATA / "fixture_cube.manifest.json").read_text())
    base = content_digest(manifest, UNDIGESTED)
    for field in (*BUILD_FIELDS, *UNDIGESTED):
        assert content_digest({**manifest, field: "changed"}, UNDIGESTED) == base, field
    for field in ("runs", "split", "normalization", "digests", "variables"):
        assert content_digest({**manifest, field: "changed"}, UNDIGESTED) != base, field


def test_format_of_and_validate_use_the_registry(tmp_path: Path, store) -> None:
    assert format_of(store.path) == "astrobio.store"
    assert format_of(tmp_path / "absent.zarr") == "astrobio.store"  # the opener gives the precise error
    check = check_store(store.path)
    assert check.ok and check.name == f"cube {store.path.name}", check
    with GroupWriter(tmp_path / "odd.zarr") as g:
        g.array("x", np.arange(3.0), ("row",))
        g.commit({"format": "astrobio.other", "format_version": 1})
    assert format_of(tmp_path / "odd.zarr") == "astrobio.other"
    check = check_store(tmp_path / "odd.zarr")
    assert not check.ok and "unknown store format 'astrobio.other'" in check.detail
    missing = check_store(tmp_path / "absent.zarr")
    assert not missing.ok and missing.detail.startswith("DataNotFoundError")


def test_writer_core_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "t.zarr"
    with pytest.raises(RuntimeError):
        with GroupWriter(out) as g:
            g.array("x", np.arange(3.0), ("row",))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with GroupWriter(out) as g:
        g.array("x", np.arange(3.0), ("row",))
        g.commit({"format": "astrobio.table", "format_version": 1})
    with pytest.raises(astrobio.ConfigError, match="already committed"):
        g.commit({})
    assert [p.name for p in tmp_path.iterdir()] == ["t.zarr"]
