"""The untouched evaluation set. Packing: one command packs every settled run into test of a store
of its own, marked untouched in its provenance; the trainer refuses that store in one line; the
untouched campaign's runs are refused in any other pack. Evaluation: recorded in the ledger,
once per checkpoint unless --again, with intervals over planets. Real runs: the shipped pack's
test planets, saved as `astrobio simulate` saves a run."""

from __future__ import annotations

from pathlib import Path

import json

import numpy as np
import pytest

import astrobio
from astrobio.cli import main
from astrobio._fsutil import file_digest
from astrobio.emulator import load_emulator
from astrobio.emulator.evaluate import evaluate_store
from astrobio.emulator.untouched import LEDGER_NAME, open_ledger
from astrobio.errors import ConfigError, IntegrityError
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


def _ledger(home: Path) -> list[dict]:
    path = home / LEDGER_NAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_untouched_evaluation_is_recorded_once_per_checkpoint(tiny_run: Path, untouched_store: Path, climate: Path,
                                                             tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ASTROBIO_HOME", str(home))
    assert main(["evaluate", str(tiny_run), "--store", str(untouched_store), "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "bootstrap over 8 planets (2000 draws" in printed and "untouched evaluation set: evaluation 1 of checkpoint" in printed
    assert "run untouched" not in printed and "run trappist-1_e" in printed  # the per-planet rows
    (entry,) = _ledger(home)
    summary = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    res = summary["evaluation"]["all"]
    ckpt = load_emulator(tiny_run).checkpoints[0]
    assert entry["checkpoint_digest"] == file_digest(ckpt) == summary["untouched"]["checkpoint_digest"]
    assert entry["store_digest"] == astrobio.open_store(untouched_store).manifest["content_digest"]
    assert entry["run"] == str(tiny_run.resolve()) and entry["again"] is False and entry["previous_evaluations"] == 0
    assert entry["headline"]["rmse"]["model"] == res["model"]["rmse"] and entry["headline"]["planets"] == 8
    phys = res["intervals"]["physics_baseline"]["all"]
    assert entry["headline"]["skill"]["physics_baseline"]["interval"] == [phys["low"], phys["high"]]
    assert entry["headline"]["skill"]["physics_baseline"]["point"] == pytest.approx(phys["point"], rel=1e-9)

    # the same checkpoint again, from the run folder or a copy of it: refused in one line, nothing recorded
    import shutil

    copy = tmp_path / "copied-run"
    shutil.copytree(tiny_run, copy)
    for run in (tiny_run, copy):
        assert main(["evaluate", str(run), "--store", str(untouched_store)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "already evaluated on this untouched store" in err[0] and "--again" in err[0]
    assert len(_ledger(home)) == 1
    # --again evaluates it and is recorded too
    assert main(["evaluate", str(copy), "--store", str(untouched_store), "--again"]) == 0
    out = capsys.readouterr().out
    assert "evaluation 2 of checkpoint" in out and "(--again)" in out
    print(out)  # shown with -s: the table a reader gets
    second = _ledger(home)[1]
    assert second["again"] is True and second["previous_evaluations"] == 1 and second["run"] == str(copy.resolve())
    assert second["headline"]["rmse"] == entry["headline"]["rmse"]
    # an ordinary store is not the untouched set: no ledger line
    evaluate_store(load_emulator(tiny_run), climate)
    assert len(_ledger(home)) == 2


def test_a_damaged_ledger_is_refused_not_guessed(tiny_run: Path, untouched_store: Path, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ASTROBIO_HOME", str(home))
    home.mkdir()
    (home / LEDGER_NAME).write_text('{"time": "2026-12-06T16:00:00Z", "checkpoint_dig')  # a torn line
    with pytest.raises(IntegrityError, match="line 1 is not a JSON record"):
        evaluate_store(load_emulator(tiny_run), untouched_store)
    with open_ledger() as ledger:
        assert ledger.path == home / LEDGER_NAME


def test_intervals_of_the_evaluation_agree_with_its_pooled_skills(tiny_run: Path, climate: Path) -> None:
    res = evaluate_store(load_emulator(tiny_run), climate).summary["evaluation"]["test"]
    assert len(res["runs"]) == 8 and all(r["n_samples"] == 4 for r in res["runs"].values())
    for base, skill in (("climatology", res["skill"]), ("physics_baseline", res["skill_physics_baseline"])):
        got = res["intervals"][base]
        assert got["all"]["point"] == pytest.approx(skill, rel=1e-6, abs=1e-9)
        assert got["all"]["low"] <= got["all"]["point"] <= got["all"]["high"]
        for v in ("ta", "ua", "va", "hus", "wap"):
            expected = 1 - res["model"]["rmse_physical"][v] / res[base]["rmse_physical"][v]
            assert got[v]["point"] == pytest.approx(expected, rel=1e-6, abs=1e-9)
            assert got[v]["low"] < got[v]["high"]  # eight different planets: a spread
