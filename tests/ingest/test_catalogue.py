"""Planet catalogue ingest: the real packaged catalogues (exoplanet.eu via spright, NASA
Exoplanet Archive 2019 VOTable via EXOSIMS) and small CSV fixtures for every refusal path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astrobio import ConfigError, DataNotFoundError, IntegrityError
from astrobio.ingest.catalogue import M_JUP_IN_M_EARTH, R_JUP_IN_R_EARTH, ingest_catalogue, read_votable
from astrobio.stores.table import COLUMNS, open_table


@pytest.fixture(scope="session")
def eu_csv(source_file) -> Path:
    return source_file("spright", "data/exoplanet_eu.csv")


@pytest.fixture(scope="session")
def nasa_vot(source_file) -> Path:
    return source_file("EXOSIMS", "PlanetPopulation/planets_2019.05.31_11.18.02.votable")


NASA_HEADER = "pl_name,pl_rade,pl_bmasse,pl_orbper,pl_orbsmax,pl_eqt,pl_insol,st_teff,st_rad,st_mass"
NASA_ROWS = [
    "Kepler-22 b,2.1,,289.86,0.812,262,1.11,5596,0.98,0.97",
    "TRAPPIST-1 e,0.92,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089",
    "Proxima Cen b,,1.07,11.186,0.04857,234,0.65,3050,0.141,0.12",
]


def _csv(tmp_path: Path, rows: list[str] = NASA_ROWS, header: str = NASA_HEADER, name: str = "nasa.csv") -> Path:
    p = tmp_path / name
    p.write_text("# NASA Exoplanet Archive style download\n# second comment line\n" + "\n".join([header, *rows]) + "\n")
    return p


@pytest.fixture(scope="module")
def eu(tmp_path_factory: pytest.TempPathFactory, eu_csv) -> tuple[Path, pd.DataFrame, dict]:
    out = ingest_catalogue(eu_csv, tmp_path_factory.mktemp("eu") / "eu.zarr", schema="exoplanet.eu")
    df, manifest = open_table(out)
    return out, df, manifest


@pytest.fixture(scope="module")
def nasa(tmp_path_factory: pytest.TempPathFactory, nasa_vot) -> tuple[Path, pd.DataFrame, dict]:
    out = ingest_catalogue(nasa_vot, tmp_path_factory.mktemp("nasa") / "nasa.zarr", schema="nasa")
    df, manifest = open_table(out)
    return out, df, manifest


# --- real catalogues -------------------------------------------------------------------------

def test_exoplanet_eu_real(eu: tuple[Path, pd.DataFrame, dict], eu_csv) -> None:
    _, df, m = eu
    raw = pd.read_csv(eu_csv)
    assert len(df) == m["n_rows"] == len(raw) == 7317
    assert list(df.columns) == [c.name for c in COLUMNS]
    assert df["pl_name"].dtype == "string" and all(df[c].dtype == np.float64 for c in ("pl_rade", "pl_bmasse", "st_teff"))
    assert m["format"] == "astrobio.table" and m["format_version"] == 1 and m["complete"] is True
    # Missing values are NaN and counted, never filled.
    assert m["missing"]["pl_rade"] == raw["radius"].isna().sum() == df["pl_rade"].isna().sum()
    assert m["missing"]["pl_bmasse"] == raw["mass"].isna().sum()
    assert m["missing"]["pl_insol"] == 7317 and df["pl_insol"].isna().all()
    assert m["missing"]["st_teff"] == raw["star_teff"].isna().sum()
    # Jupiter -> Earth units.
    np.testing.assert_allclose(df["pl_rade"].to_numpy(), raw["radius"].to_numpy() * R_JUP_IN_R_EARTH)
    np.testing.assert_allclose(df["pl_bmasse"].to_numpy(), raw["mass"].to_numpy() * M_JUP_IN_M_EARTH)
    row = df[df["pl_name"] == "TRAPPIST-1 e"].iloc[0]
    assert 0.8 < row["pl_rade"] < 1.0 and 0.5 < row["pl_bmasse"] < 0.8  # Earth-sized, as published
    units = {c["name"]: c["units"] for c in m["columns"]}
    assert units["pl_rade"] == "R_earth" and units["pl_bmasse"] == "M_earth" and units["st_rad"] == "R_sun"
    assert set(df["pl_bmassprov"].dropna()) == {"Mass", "Msini"}
    assert "exoplanet.eu" in m["credit"]["name"]
    assert m["provenance"]["sources"][0]["digest"].startswith("sha256:")
    assert m["provenance"]["kind"] == "observation" and "zarr" in m["provenance"]["tools"]


def test_nasa_votable_real(nasa: tuple[Path, pd.DataFrame, dict]) -> None:
    _, df, m = nasa
    assert len(df) == 3972
    assert m["missing"]["pl_rade"] == 881 and m["missing"]["pl_bmasse"] == 2417 and m["missing"]["pl_eqt"] == 3369
    assert m["missing"]["pl_insol"] == 3733 and m["missing"]["st_teff"] == 175
    row = df[df["pl_name"] == "11 Com b"].iloc[0]
    assert row["pl_bmasse"] == pytest.approx(6165.6) and row["st_teff"] == 4742.0 and row["pl_bmassprov"] == "Msini"
    assert np.isnan(row["pl_rade"])
    assert m["source_notes"]["limit_flags"]["pl_bmasse"]["upper"] > 0
    assert m["credit"]["name"] == "NASA Exoplanet Archive"
    assert (df["source"] == "NASA Exoplanet Archive").all()


def test_votable_reader(tmp_path: Path) -> None:
    vot = tmp_path / "t.vot"  # no namespace, an empty cell, an escaped entity, a second table
    vot.write_text(
        "<VOTABLE><RESOURCE><TABLE><FIELD name='pl_name'/><FIELD name='x'/><FIELD name='pl_eqt'/><DATA><TABLEDATA>"
        "<TR><TD>A &amp; B b</TD><TD>1</TD><TD>250</TD></TR><TR><TD>C b</TD><TD/><TD></TD></TR>"
        "</TABLEDATA></DATA></TABLE><TABLE><FIELD name='other'/></TABLE></RESOURCE></VOTABLE>"
    )
    df = read_votable(vot, ("pl_name", "pl_eqt", "not_a_field"))
    assert list(df.columns) == ["pl_name", "pl_eqt"]
    assert df.values.tolist() == [["A & B b", "250"], ["C b", None]]


# --- NASA CSV and idempotence ----------------------------------------------------------------

def test_nasa_csv(tmp_path: Path) -> None:
    out = ingest_catalogue(_csv(tmp_path), tmp_path / "t.zarr", schema="nasa")
    df, m = open_table(out)
    assert df["pl_name"].tolist() == ["Kepler-22 b", "TRAPPIST-1 e", "Proxima Cen b"]
    assert np.isnan(df.loc[0, "pl_bmasse"]) and np.isnan(df.loc[2, "pl_rade"])
    assert m["missing"]["pl_bmasse"] == 1 and m["missing"]["pl_rade"] == 1
    assert df["pl_bmassprov"].isna().all()  # column absent from the source: missing, not guessed


def test_rerun_is_a_noop_and_deterministic(tmp_path: Path) -> None:
    src = _csv(tmp_path)
    out = ingest_catalogue(src, tmp_path / "t.zarr", schema="nasa")
    meta = out / "zarr.json"
    before = (meta.stat().st_mtime_ns, meta.stat().st_ino, json.loads(meta.read_text()))
    ingest_catalogue(src, out, schema="nasa")
    after = (meta.stat().st_mtime_ns, meta.stat().st_ino, json.loads(meta.read_text()))
    assert before == after
    other = ingest_catalogue(src, tmp_path / "again.zarr", schema="nasa")
    assert open_table(other)[1]["content_digest"] == before[2]["attributes"]["astrobio"]["content_digest"]
    # Changed input: rebuilt.
    src.write_text(src.read_text().replace("262", "263"))
    ingest_catalogue(src, out, schema="nasa")
    df, m = open_table(out)
    assert df.loc[0, "pl_eqt"] == 263.0 and m["content_digest"] != before[2]["attributes"]["astrobio"]["content_digest"]


def test_default_flag_keeps_default_rows(tmp_path: Path) -> None:
    rows = [r + ",1" for r in NASA_ROWS] + ["Kepler-22 b,2.4,,289.8,0.85,262,1.1,5518,0.979,0.97,0"]
    out = ingest_catalogue(_csv(tmp_path, rows, NASA_HEADER + ",default_flag"), tmp_path / "t.zarr", schema="nasa")
    df, m = open_table(out)
    assert len(df) == 3 and df.loc[0, "pl_rade"] == 2.1 and m["source_notes"]["non_default_rows_dropped"] == 1


# --- refusals ----------------------------------------------------------------------------------

def test_missing_columns_refused(tmp_path: Path) -> None:
    header = NASA_HEADER.replace(",pl_insol", "").replace(",st_mass", "")
    rows = [",".join(r.split(",")[:6] + r.split(",")[7:9]) for r in NASA_ROWS]
    with pytest.raises(IntegrityError, match=r"pl_insol.*st_mass"):
        ingest_catalogue(_csv(tmp_path, rows, header), tmp_path / "t.zarr", schema="nasa")
    assert not (tmp_path / "t.zarr").exists()


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ("TRAPPIST-1 e,abc,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089", r"row 1 \(planet 'TRAPPIST-1 e'\), column 'pl_rade'.*not a finite number"),
        ("TRAPPIST-1 e,-0.92,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089", r"row 1 \(planet 'TRAPPIST-1 e'\), column 'pl_rade'.*not physically possible"),
        ("TRAPPIST-1 e,0.92,0.69,6.0996,0.02925,251,0.66,0,0.119,0.089", r"row 1 .*column 'st_teff'"),
        ("TRAPPIST-1 e,0.92,0.69,inf,0.02925,251,0.66,2566,0.119,0.089", r"row 1 .*column 'pl_orbper'.*not a finite number"),
        ("Kepler-22 b,0.92,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089", r"duplicate planet names.*'Kepler-22 b' \(rows 0 and 1\)"),
        (",0.92,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089", r"row 1, column 'pl_name'.*empty"),
    ],
)
def test_bad_values_refused(tmp_path: Path, bad: str, pattern: str) -> None:
    out = tmp_path / "t.zarr"
    ingest_catalogue(_csv(tmp_path), out, schema="nasa")
    before = open_table(out)[1]["content_digest"]
    with pytest.raises(IntegrityError, match=pattern):
        ingest_catalogue(_csv(tmp_path, [NASA_ROWS[0], bad, NASA_ROWS[2]]), out, schema="nasa")
    # The previous store is untouched and no partial build is left beside it.
    assert open_table(out)[1]["content_digest"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nasa.csv", "t.zarr"]


def test_eu_missing_columns_refused(tmp_path: Path) -> None:
    src = tmp_path / "eu.csv"
    src.write_text("name,mass,radius\nX b,1.0,1.0\n")
    with pytest.raises(IntegrityError, match="mass_sini"):
        ingest_catalogue(src, tmp_path / "t.zarr", schema="exoplanet.eu")


def test_missing_source_and_bad_schema(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nope.csv"):
        ingest_catalogue(tmp_path / "nope.csv", tmp_path / "t.zarr", schema="nasa")
    with pytest.raises(ConfigError, match="schema"):
        ingest_catalogue(_csv(tmp_path), tmp_path / "t.zarr", schema="exoplanets.org")


def test_binary_and_broken_votable_refused(tmp_path: Path) -> None:
    vot = tmp_path / "t.votable"
    vot.write_text('<?xml version="1.0"?><VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
                   '<FIELD name="pl_name" datatype="char"/><DATA><BINARY><STREAM encoding="base64">AAAA</STREAM>'
                   '</BINARY></DATA></TABLE></RESOURCE></VOTABLE>')
    with pytest.raises(IntegrityError, match="BINARY"):
        ingest_catalogue(vot, tmp_path / "t.zarr", schema="nasa")
    vot.write_text("<VOTABLE><RESOURCE><TABLE><FIELD name='pl_name'/>")
    with pytest.raises(IntegrityError, match="not a readable VOTable"):
        ingest_catalogue(vot, tmp_path / "t.zarr", schema="nasa")


def test_open_refuses_missing_and_incomplete(tmp_path: Path) -> None:
    missing = tmp_path / "absent.zarr"
    with pytest.raises(DataNotFoundError) as e:
        open_table(missing)
    assert str(missing) in str(e.value) and "astrobio datasets build default" in str(e.value)
    out = ingest_catalogue(_csv(tmp_path), tmp_path / "t.zarr", schema="nasa")
    meta = out / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["astrobio"]["complete"] = False
    meta.write_text(json.dumps(doc))
    with pytest.raises(DataNotFoundError, match="incomplete.*astrobio datasets build default"):
        open_table(out)
    del doc["attributes"]["astrobio"]
    meta.write_text(json.dumps(doc))
    with pytest.raises(DataNotFoundError, match="incomplete"):
        open_table(out)
    os.remove(meta)
    with pytest.raises(DataNotFoundError, match="no zarr.json"):
        open_table(out)


def test_open_detects_changed_data(tmp_path: Path) -> None:
    out = ingest_catalogue(_csv(tmp_path), tmp_path / "t.zarr", schema="nasa")
    chunk = next(p for p in (out / "pl_rade" / "c").rglob("*") if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="pl_rade"):
        open_table(out)
    with pytest.raises(IntegrityError, match="pl_rade.*checksum"):  # zarr's crc32c, without the digest pass
        open_table(out, verify=False)
