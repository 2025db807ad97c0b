"""The k-fold's aggregate over its held-out planets: every planet of the real default store is
tested once across the folds; the skills pooled over them carry bootstrap intervals over planets
(beside the mean and spread over folds), computed from each planet's record in its fold's summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import astrobio
from astrobio.emulator.intervals import planet_intervals
from astrobio.train.cli import main

TINY = ["--max-epochs", "1", "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none",
        "--set", "trainer.plots=false"]


def test_kfold_intervals_over_every_held_out_planet(climate: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "kfold"
    assert main(["--kfold", "2", "--store", str(climate), "--output-dir", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "kfold.json").read_text())
    store = astrobio.open_store(climate)
    planets = doc["aggregate"]["planets"]
    assert sorted(planets["runs"]) == sorted(r.id for r in store.runs)  # each planet once, from its own fold
    n = len(store.runs)
    assert f"bootstrap over {n} planets (2000 draws" in printed and "mean ± standard deviation over the folds" in printed
    for f in doc["folds"]:  # a planet's record is its own fold's evaluation of it
        summary = json.loads((out / f"fold-{f['fold']}" / "summary.json").read_text())
        for run_id in f["split"]["test"]:
            assert planets["runs"][run_id] == summary["evaluation"]["test"]["runs"][run_id]
            assert f"  {run_id}: rmse " in printed
    got = planets["intervals"]
    assert got == planet_intervals(planets["runs"])
    for base in ("climatology", "physics_baseline"):
        assert set(got[base]) == {"all", "ta", "ua", "va", "hus", "wap"}
        for v, s in got[base].items():
            assert s["planets"] == n and s["low"] <= s["point"] <= s["high"] and s["low"] < s["high"]
        # the pooled point is the skill of all held-out samples together: between the folds' own skills
        folds = [f["metrics"]["skill"][base]["all"] for f in doc["folds"]]
        assert min(folds) - 1e-9 <= got[base]["all"]["point"] <= max(folds) + 1e-9
    assert doc["aggregate"]["skill"]["climatology"]["all"]["mean"] == pytest.approx(
        sum(f["metrics"]["skill"]["climatology"]["all"] for f in doc["folds"]) / 2)
