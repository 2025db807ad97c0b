"""Table and graph stores in object storage (s3://) against a real local S3 server (moto, real
HTTP, signed requests): written by the ingest commands to a URL, read back equal to the local
store, with the local guarantees (DataNotFoundError naming the URL, IntegrityError on a changed
object, no secret in a message), validated through the kinds registry, and trained on."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import astrobio
from astrobio.cli import main as cli_main
from astrobio.datasets.sources import package_file
from astrobio.ingest.catalogue import ingest_catalogue
from astrobio.ingest.metabolic import ingest_metabolic
from astrobio.stores import _remote
from astrobio.stores.graph import open_graph_store, open_graphs
from astrobio.stores.table import open_table
from s3_fixtures import S3, s3, s3_session  # noqa: F401  (fixtures)

# Four real planets (NASA Exoplanet Archive values), the NASA schema's columns.
NASA_CSV = """pl_name,pl_rade,pl_bmasse,pl_orbper,pl_orbsmax,pl_eqt,pl_insol,st_teff,st_rad,st_mass
Kepler-22 b,2.1,,289.86,0.812,262,1.11,5596,0.98,0.97
TRAPPIST-1 e,0.92,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089
Proxima Cen b,,1.07,11.186,0.04857,234,0.65,3050,0.141,0.12
LHS 1140 b,1.73,6.98,24.737,0.0946,226,0.43,3216,0.2159,0.179
"""


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    p = tmp_path / "nasa.csv"
    p.write_text(NASA_CSV)
    return p


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Python's temporary directory for this test, to see what reads leave behind."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _flip_a_byte(s3: S3, key: str) -> None:
    data = bytearray(s3.get(key))
    data[len(data) // 2] ^= 0x01
    s3.put(key, bytes(data))


def _chunk_key(s3: S3, prefix: str, array: str) -> str:
    return next(k for k in s3.keys(f"{prefix}/{array}/") if "/c/" in k)


def test_a_table_ingested_to_a_url_reads_back_equal_to_the_local_table(s3: S3, catalogue: Path, tmp_path: Path,
                                                                         private_tmp: Path) -> None:
    url = s3.url("tables/round/planets.zarr")
    assert ingest_catalogue(catalogue, url, schema="nasa") == url
    local = ingest_catalogue(catalogue, tmp_path / "planets.zarr", schema="nasa")
    got, got_manifest = open_table(url)
    want, want_manifest = open_table(local)
    pd.testing.assert_frame_equal(got, want)
    assert got["pl_name"].tolist()[:2] == ["Kepler-22 b", "TRAPPIST-1 e"] and np.isnan(got["pl_rade"][2])
    assert got_manifest["name"] == "planets.zarr" and got_manifest["n_rows"] == 4
    for key in ("content_digest", "digests", "columns", "missing"):
        assert got_manifest[key] == want_manifest[key]
    assert s3.keys("tables/round/planets.zarr/")[-1] == "tables/round/planets.zarr/zarr.json"
    assert list(private_tmp.iterdir()) == []  # the downloaded copies are removed after reading


def test_ingest_to_a_url_is_a_noop_when_the_store_there_is_up_to_date(s3: S3, catalogue: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url = s3.url("tables/noop/planets.zarr")
    ingest_catalogue(catalogue, url, schema="nasa")

    def upload(build: Path, to: str) -> str:
        raise AssertionError(f"uploaded {to} again")

    monkeypatch.setattr(_remote, "upload", upload)
    assert ingest_catalogue(catalogue, url, schema="nasa") == url


def test_graphs_ingested_to_a_url_from_the_cli_read_back_equal_to_the_local_store(s3: S3, ecoli_graphs: Path,
                                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url = s3.url("graphs/round/metabolic.zarr")
    model = package_file("cobra", "data/textbook.xml.gz")
    assert cli_main(["ingest", "metabolic", "--out", url, f"e_coli_core={model}"]) == 0
    assert capsys.readouterr().out.strip() == url
    manifest, got = open_graph_store(url)
    want = open_graphs(ecoli_graphs)
    assert manifest["content_digest"] == astrobio.stores.graph.read_graph_manifest(ecoli_graphs)["content_digest"]
    assert list(got) == list(want) == ["e_coli_core"]
    g, w = got["e_coli_core"], want["e_coli_core"]
    assert g.num_nodes == w.num_nodes == 72 and g.metabolite_ids == w.metabolite_ids and g.feature_names == w.feature_names
    for field in ("x", "edge_index", "edge_weight", "incidence_index", "stoichiometry", "bounds", "boundary"):
        np.testing.assert_array_equal(getattr(g, field), getattr(w, field))


def test_no_store_or_an_incomplete_one_at_the_url_is_data_not_found(s3: S3, catalogue: Path) -> None:
    absent = s3.url("tables/absent/planets.zarr")
    with pytest.raises(astrobio.DataNotFoundError, match=f"no astrobio.table store: {absent}"):
        open_table(absent)
    with pytest.raises(astrobio.DataNotFoundError, match="no astrobio.graphs store"):
        open_graphs(s3.url("graphs/absent/metabolic.zarr"))
    url = s3.url("tables/incomplete/planets.zarr")
    ingest_catalogue(catalogue, url, schema="nasa")
    s3.delete("tables/incomplete/planets.zarr/zarr.json")  # an upload killed before its last object
    with pytest.raises(astrobio.DataNotFoundError, match=f"{url} is not a zarr v3 group"):
        open_table(url)


def test_a_missing_array_object_is_an_integrity_error_naming_the_url(s3: S3, catalogue: Path) -> None:
    url = s3.url("tables/missing/planets.zarr")
    ingest_catalogue(catalogue, url, schema="nasa")
    s3.delete(_chunk_key(s3, "tables/missing/planets.zarr", "pl_eqt"))
    with pytest.raises(astrobio.IntegrityError, match="array 'pl_eqt' digest is sha256:") as e:
        open_table(url)
    assert e.value.path == url


def test_a_flipped_byte_in_an_array_object_is_an_integrity_error_without_secrets(s3: S3, catalogue: Path,
                                                                                 ecoli_graphs: Path) -> None:
    table = s3.url("tables/flipped/planets.zarr")
    ingest_catalogue(catalogue, table, schema="nasa")
    _flip_a_byte(s3, _chunk_key(s3, "tables/flipped/planets.zarr", "st_teff"))
    with pytest.raises(astrobio.IntegrityError, match="array 'st_teff' digest is sha256:") as e:
        open_table(table)
    message = str(e.value)
    assert message.startswith(table) and "\n" not in message and "astrobio-fetch" not in message
    assert s3.secret not in message and s3.key_id not in message
    with pytest.raises(astrobio.IntegrityError, match="checksum|unreadable"):
        open_table(table, verify=False)  # without the digest check zarr's crc32c still refuses it

    graphs = s3.url("graphs/flipped/metabolic.zarr")
    _remote.upload(ecoli_graphs, graphs)
    open_graphs(graphs)
    _flip_a_byte(s3, _chunk_key(s3, "graphs/flipped/metabolic.zarr", "e_coli_core/x"))
    with pytest.raises(astrobio.IntegrityError, match="array 'e_coli_core/x' digest is sha256:"):
        open_graphs(graphs)


def test_validate_finds_tables_and_graphs_at_urls_through_the_kinds_registry(s3: S3, catalogue: Path, ecoli_graphs: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    table, graphs = s3.url("validate/planets.zarr"), s3.url("validate/metabolic.zarr")
    ingest_catalogue(catalogue, table, schema="nasa")
    _remote.upload(ecoli_graphs, graphs)
    assert cli_main(["validate", "--store", table, "--store", graphs]) == 0
    out = capsys.readouterr().out
    assert "table planets.zarr" in out and "4 rows x 12 columns" in out
    assert "graph metabolic.zarr" in out and "e_coli_core: 72 nodes" in out
    _flip_a_byte(s3, _chunk_key(s3, "validate/planets.zarr", "pl_orbper"))
    assert cli_main(["validate", "--store", table]) == 1
    assert "IntegrityError" in capsys.readouterr().out


def test_the_graph_model_trains_on_a_graph_store_at_a_url(s3: S3, ecoli_graphs: Path, tmp_path: Path) -> None:
    from astrobio.train.cli import main as train_main

    url = s3.url("graphs/train/metabolic.zarr")
    _remote.upload(ecoli_graphs, url)
    out = tmp_path / "run"
    assert train_main(["--model", "graph", "--set", f"data.graphs={url}", "--output-dir", str(out), "--max-epochs", "1",
                       "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "trainer.plots=false",
                       "--set", "model.options.networks=[e_coli_core]", "--set", "model.options.hidden=16",
                       "--set", "model.options.latent=8"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["data"]["location"] == url
    assert summary["networks"]["e_coli_core"]["edges"] == 80
    assert s3.secret not in json.dumps(summary)
