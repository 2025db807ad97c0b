"""Metabolic network ingest: cobra's packaged real models (e_coli_core, iJO1366) and small SBML
fixtures written here for the refusal paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from astrobio import ConfigError, DataNotFoundError, IntegrityError
from astrobio.ingest.metabolic import CURRENCY, FEATURES, _sbml_uncharged, ingest_metabolic
from astrobio.stores.graph import open_graphs
from astrobio.stores.table import open_table

cobra = pytest.importorskip("cobra")


@pytest.fixture(scope="session")
def textbook(source_file) -> Path:
    return source_file("cobra", "data/textbook.xml.gz")


@pytest.fixture(scope="session")
def ijo1366(source_file) -> Path:
    return source_file("cobra", "data/iJO1366.xml.gz")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, textbook, ijo1366) -> tuple[Path, dict]:
    out = ingest_metabolic({"e_coli_core": textbook, "iJO1366": ijo1366}, tmp_path_factory.mktemp("g") / "graphs.zarr")
    return out, open_graphs(out)


@pytest.fixture(scope="module")
def textbook_model(textbook):
    return cobra.io.read_sbml_model(str(textbook))


def _manifest(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())["attributes"]["astrobio"]


def _tiny_sbml(path: Path) -> Path:
    """A two-reaction model with one metabolite of unknown formula."""
    m = cobra.Model("tiny")
    m.compartments = {"c": "cytosol", "e": "extracellular"}
    a_e = cobra.Metabolite("a_e", formula="C6H12O6", charge=0, compartment="e", name="A")
    a_c = cobra.Metabolite("a_c", formula="C6H12O6", charge=0, compartment="c", name="A")
    b_c = cobra.Metabolite("b_c", formula=None, compartment="c", name="B")
    h_c = cobra.Metabolite("h_c", formula="H", charge=1, compartment="c", name="H+")
    t = cobra.Reaction("ATRANS", name="A transport", subsystem="Transport")
    t.add_metabolites({a_e: -1, a_c: 1})
    r = cobra.Reaction("A2B", name="A to B", subsystem="Made-up pathway")
    r.add_metabolites({a_c: -1, b_c: 2, h_c: 1})
    m.add_reactions([t, r])
    # SBML carries subsystems as groups (cobra reads them back into Reaction.subsystem).
    m.add_groups([cobra.core.Group("g1", name="Transport", members=[t]), cobra.core.Group("g2", name="Made-up pathway", members=[r])])
    cobra.io.write_sbml_model(m, str(path))
    return path


# --- real models -----------------------------------------------------------------------------

def test_real_models(real: tuple[Path, dict], textbook_model) -> None:
    out, graphs = real
    m = _manifest(out)
    assert m["format"] == "astrobio.graphs" and m["format_version"] == 1 and m["complete"] is True
    core, ijo = graphs["e_coli_core"], graphs["iJO1366"]
    assert (core.num_nodes, core.num_reactions) == (72, 95)
    assert (ijo.num_nodes, ijo.num_reactions) == (1805, 2583)
    c = m["models"]["iJO1366"]["counts"]
    assert c["subsystems"] == 37 and c["reactions_with_subsystem"] == 2251
    assert sum(1 for s in ijo.subsystems if s) == 2251 and len(set(ijo.subsystems) - {""}) == 37
    assert m["models"]["iJO1366"]["counts"]["edges_undirected"] * 2 == ijo.edge_index.shape[1]
    for g in (core, ijo):
        assert g.metabolite_ids == sorted(g.metabolite_ids) and g.reaction_ids == sorted(g.reaction_ids)
        assert g.x.dtype == np.float32 and g.x.shape == (g.num_nodes, len(g.feature_names))
        assert g.edge_index.dtype == np.int64 and g.edge_index.shape[0] == 2
        src, dst = g.edge_index
        assert (src != dst).all() and g.edge_index.max() < g.num_nodes
        pairs = set(zip(src.tolist(), dst.tolist()))
        assert pairs == {(b, a) for a, b in pairs}  # undirected: both directions stored
        assert g.edge_weight.shape == (g.edge_index.shape[1],) and (g.edge_weight >= 1).all()
        assert g.incidence_index.shape == (2, g.stoichiometry.size) and (g.stoichiometry != 0).all()
    assert m["provenance"]["read_seconds"]["iJO1366"] > 0 and "cobra" in m["provenance"]["tools"]


def test_textbook_matches_cobra(real: tuple[Path, dict], textbook_model) -> None:
    g = real[1]["e_coli_core"]
    mi = {mid: i for i, mid in enumerate(g.metabolite_ids)}
    ri = {rid: j for j, rid in enumerate(g.reaction_ids)}
    # Stoichiometry of every reaction equals cobra's.
    for r in textbook_model.reactions:
        sel = g.incidence_index[1] == ri[r.id]
        got = {g.metabolite_ids[i]: s for i, s in zip(g.incidence_index[0][sel], g.stoichiometry[sel])}
        assert got == {m.id: c for m, c in r.metabolites.items()}
    # Features of D-glucose (extracellular): C6H12O6, charge 0, compartment e.
    f = dict(zip(g.feature_names, g.x[mi["glc__D_e"]]))
    assert (f["C"], f["H"], f["O"], f["N"], f["charge"], f["formula_known"], f["comp:e"], f["comp:c"]) == (6, 12, 6, 0, 0, 1, 1, 0)
    assert g.feature_names[: len(FEATURES)] == list(FEATURES)
    # Currency metabolites and the biomass reaction are nodes but not in the projection.
    linked = set(g.edge_index[0].tolist())
    assert mi["h_c"] not in linked and mi["atp_c"] not in linked and "atp" in CURRENCY
    assert mi["h_c"] in set(g.incidence_index[0].tolist())
    assert _manifest(real[0])["models"]["e_coli_core"]["projection_excluded_reactions"] == ["Biomass_Ecoli_core"]
    # PGK links 3pg_c and 13dpg_c.
    assert (mi["3pg_c"], mi["13dpg_c"]) in set(zip(*g.edge_index.tolist()))
    assert g.boundary.sum() == len(textbook_model.boundary)


def test_json_model_gives_the_same_graph(tmp_path: Path, real: tuple[Path, dict], textbook_model) -> None:
    js = tmp_path / "e_coli_core.json"
    cobra.io.save_json_model(textbook_model, str(js))
    g = open_graphs(ingest_metabolic({"e_coli_core": js}, tmp_path / "g.zarr"))["e_coli_core"]
    ref = real[1]["e_coli_core"]
    assert g.metabolite_ids == ref.metabolite_ids and g.reaction_ids == ref.reaction_ids
    np.testing.assert_array_equal(g.edge_index, ref.edge_index)
    np.testing.assert_array_equal(g.x, ref.x)
    np.testing.assert_array_equal(g.stoichiometry, ref.stoichiometry)


def test_rerun_is_a_noop_and_deterministic(tmp_path: Path, textbook) -> None:
    out = ingest_metabolic({"e_coli_core": textbook}, tmp_path / "a.zarr")
    meta = out / "zarr.json"
    before = (meta.stat().st_mtime_ns, meta.stat().st_ino, meta.read_bytes())
    ingest_metabolic({"e_coli_core": textbook}, out)
    assert (meta.stat().st_mtime_ns, meta.stat().st_ino, meta.read_bytes()) == before
    again = ingest_metabolic({"e_coli_core": textbook}, tmp_path / "b.zarr")
    assert _manifest(again)["content_digest"] == _manifest(out)["content_digest"]
    assert _manifest(again)["digests"] == _manifest(out)["digests"]
    # A different option is a different build.
    ingest_metabolic({"e_coli_core": textbook}, out, currency=())
    assert _manifest(out)["content_digest"] != _manifest(again)["content_digest"]
    assert _manifest(out)["models"]["e_coli_core"]["counts"]["currency_metabolites"] == 0


def test_tiny_sbml_unknown_formula(tmp_path: Path) -> None:
    g = open_graphs(ingest_metabolic({"tiny": _tiny_sbml(tmp_path / "tiny.xml")}, tmp_path / "g.zarr"))["tiny"]
    assert g.metabolite_ids == ["a_c", "a_e", "b_c", "h_c"] and g.reaction_ids == ["A2B", "ATRANS"]
    assert g.subsystems == ["Made-up pathway", "Transport"] and g.reaction_names == ["A to B", "A transport"]
    f = dict(zip(g.feature_names, g.x[2]))
    assert np.isnan(f["C"]) and np.isnan(f["charge"]) and f["formula_known"] == 0  # unknown, not zero
    # h is currency: edges a_c-b_c (A2B) and a_c-a_e (ATRANS) only, both directions.
    assert g.edge_index.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]
    assert g.stoichiometry.tolist() == [-1.0, 2.0, 1.0, 1.0, -1.0]


def test_absent_sbml_charges_are_unknown_not_zero(textbook, source_file) -> None:
    # cobra reads a species without fbc:charge as charge 0; iYS1720 has 16 such species.
    uncharged = _sbml_uncharged(source_file("cobra", "data/salmonella.xml.gz"))
    assert len(uncharged) == 16 and "OA_STmin_p" in uncharged
    assert _sbml_uncharged(textbook) == set()


# --- refusals ----------------------------------------------------------------------------------

def test_missing_and_unreadable_models_refused(tmp_path: Path, textbook) -> None:
    with pytest.raises(DataNotFoundError, match="absent.xml"):
        ingest_metabolic({"m": tmp_path / "absent.xml"}, tmp_path / "g.zarr")
    bad = tmp_path / "bad.xml"
    bad.write_text("<sbml><model id='x'><listOfSpecies><species")
    with pytest.raises(IntegrityError, match="cannot read the metabolic model"):
        ingest_metabolic({"m": bad}, tmp_path / "g.zarr")
    other = tmp_path / "model.mat.txt"
    other.write_text("x")
    with pytest.raises(ConfigError, match="unknown model format"):
        ingest_metabolic({"m": other}, tmp_path / "g.zarr")
    with pytest.raises(ConfigError, match="model name"):
        ingest_metabolic({"a/b": textbook}, tmp_path / "g.zarr")
    with pytest.raises(ConfigError):
        ingest_metabolic({}, tmp_path / "g.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xml", "model.mat.txt"]  # no partial store left


def test_failed_ingest_keeps_previous_store(tmp_path: Path) -> None:
    out = ingest_metabolic({"tiny": _tiny_sbml(tmp_path / "tiny.xml")}, tmp_path / "g.zarr")
    digest = _manifest(out)["content_digest"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(IntegrityError):
        ingest_metabolic({"tiny": tmp_path / "tiny.xml", "bad": bad}, out)
    assert _manifest(out)["content_digest"] == digest and list(open_graphs(out)) == ["tiny"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "g.zarr", "tiny.xml"]


def test_open_refuses_missing_incomplete_and_changed(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as e:
        open_graphs(tmp_path / "absent.zarr")
    assert "absent.zarr" in str(e.value) and "astrobio datasets build default" in str(e.value)
    out = ingest_metabolic({"tiny": _tiny_sbml(tmp_path / "tiny.xml")}, tmp_path / "g.zarr")
    with pytest.raises(DataNotFoundError, match="not 'astrobio.table'"):
        open_table(out)
    chunk = next(p for p in (out / "tiny" / "x" / "c").rglob("*") if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match="tiny/x"):
        open_graphs(out)
    meta = out / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["astrobio"].pop("complete")
    meta.write_text(json.dumps(doc))
    with pytest.raises(DataNotFoundError, match="incomplete"):
        open_graphs(out)
