"""The untouched evaluation set's packing: one command packs every settled run into test of a
store of its own, marked untouched in its provenance; the trainer refuses that store in one line;
the untouched campaign's runs are refused in any other pack. Real runs: the shipped pack's test
planets, saved as `astrobio simulate` saves a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import astrobio
from astrobio.cli import main
from astrobio.errors import ConfigError
from astrobio.reader import CubeReader
from astrobio.simulate.output import SimulationResult, save_result
from astrobio.train import train

from .conftest import tiny_config


def save_runs(climate: Path, out: Path, runs: list[str], names: dict[str, str] | None = None) -> Path:
    """The store's runs `runs` as `astrobio simulate` results under `out` (optionally renamed)."""
    store = astrobio.open_store(climate)
    raw = CubeReader(climate, normalize="none")
    coords = {k: np.asarray(store.manifest["coords"][k]["values"]) for k in ("level", "lat", "lon")}
    for run_id in runs:
        run = store.run(run_id)
        save_result(SimulationResult(
            data=raw.read(list(run.samples)).cubes, surface={}, coords={**coords, "month": np.arange(9, 13)},
            units={v.name: v.units for v in store.variables},
            provenance={"planet": dict(run.attrs["spec"]), "campaign": {"drift_K_per_60d": run.attrs["drift_K_per_60d"]}}),
            out / (names or {}).get(run_id, run_id))
    return out


@pytest.fixture(scope="session")
def untouched_store(climate: Path, tmp_path_factory) -> Path:
    """The shipped test planets packed as an untouched set with the documented command."""
    tmp = tmp_path_factory.mktemp("untouched")
    results = save_runs(climate, tmp / "gcm_untouched", astrobio.open_store(climate).split["test"])
    assert main(["datasets", "pack-climate", str(results), "--untouched", "--store", str(tmp / "untouched.zarr")]) == 0
    return tmp / "untouched.zarr"


def test_untouched_pack_puts_every_run_in_test_and_marks_the_store(untouched_store: Path, climate: Path) -> None:
    store = astrobio.open_store(untouched_store)
    tests = sorted(astrobio.open_store(climate).split["test"])
    assert sorted(store.split["test"]) == tests and not store.split.get("train") and not store.split.get("val")
    prov = store.manifest["provenance"]
    assert prov["untouched"] is True and "--untouched" in prov["command"]
    assert not astrobio.open_store(climate).manifest["provenance"].get("untouched")


def test_trainer_refuses_the_untouched_store_in_one_line(untouched_store: Path, tmp_path: Path, capsys) -> None:
    cfg = tiny_config(untouched_store, tmp_path / "run")
    with pytest.raises(ConfigError, match="untouched evaluation set: never trained or early-stopped on"):
        train(cfg)
    cfg = tiny_config(untouched_store, tmp_path / "run2")  # naming the splits does not get round it
    runs = astrobio.open_store(untouched_store).split["test"]
    cfg.data.split = {"train": runs[:-2], "val": runs[-2:-1], "test": runs[-1:]}
    with pytest.raises(ConfigError, match="untouched"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
    from astrobio.train.cli import main as train_main

    assert train_main(["--store", str(untouched_store), "--max-epochs", "1", "--output-dir", str(tmp_path / "run3")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "untouched" in err[0]


def test_untouched_runs_are_refused_in_any_other_pack(climate: Path, tmp_path: Path, capsys) -> None:
    # a run of the untouched campaign (by its name) among ordinary results: no training pack takes it
    results = save_runs(climate, tmp_path / "mixed", ["trappist-1_e", "design-f20"], names={"design-f20": "untouched-s01"})
    for argv in (["--out", str(tmp_path / "pack")], ["--split", "test=trappist-1_e", "--store", str(tmp_path / "s.zarr")]):
        assert main(["datasets", "pack-climate", str(results), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "untouched evaluation campaign (untouched-s01)" in err[0]
    assert not (tmp_path / "pack").exists()
    # --untouched needs its own store, takes no split, and never writes the package's pack
    assert main(["datasets", "pack-climate", str(results), "--untouched"]) == 2
    assert "add --store PATH" in capsys.readouterr().err
    assert main(["datasets", "pack-climate", str(results), "--untouched", "--split", "test=trappist-1_e",
                 "--store", str(tmp_path / "u.zarr")]) == 2
    assert "drop --split" in capsys.readouterr().err
    from astrobio.datasets.climate import pack_path
    from astrobio.simulate import pack_results

    with pytest.raises(ConfigError, match="never packed into the package's training pack"):
        pack_results(results, pack_path()[0].parent, untouched=True)
