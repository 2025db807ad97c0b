"""`astrobio evaluate`: the held-out table on the training store equals training's; on another
store with the same variables, grid and parameters the samples are read with the run's
normalization (a planet scores the same in both stores); a store that differs is refused in
one line naming the difference. The noise floor and the ensemble calibration in summary.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import zarr

import astrobio
from astrobio.cli import main
from astrobio.emulator import load_emulator
from astrobio.emulator.evaluate import evaluate_store
from astrobio.errors import ConfigError
from astrobio.reader import CubeReader
from astrobio.stores import StoreWriter, Variable


@pytest.fixture(scope="module")
def emulator(tiny_run: Path):
    return load_emulator(tiny_run)


def _copy(climate: Path, out: Path, runs: list[str], *, variables=None, params=None, cube=lambda c: c, coords=None,
          param_columns=None) -> Path:
    """Some runs of the real store into a new store (another digest), optionally changed."""
    store = astrobio.open_store(climate)
    cubes, prm = zarr.open_array(climate / "cubes", mode="r"), zarr.open_array(climate / "params", mode="r")
    columns = param_columns if param_columns is not None else list(range(len(store.params)))
    with StoreWriter(out, variables=variables or store.variables, params=params or [store.params[j] for j in columns],
                     sample_shape=cube(np.zeros((1, *store.sample_shape), np.float32)).shape[1:],
                     coords=coords if coords is not None else store.manifest["coords"]) as w:
        for r in runs:
            run = store.run(r)
            w.add_run(r, cube(np.asarray(cubes[run.start : run.start + run.count])),
                      np.asarray(prm[run.start : run.start + run.count])[:, columns])
        return Path(w.commit({"test": runs}))


def test_cli_evaluate_on_the_training_store_prints_trainings_table(tiny_run: Path, climate: Path, capsys, tmp_path: Path) -> None:
    assert main(["evaluate", str(tiny_run), "--store", str(climate), "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "test (32)" in printed and "physics baseline" in printed and "noise floor" in printed and "ta [K]" in printed
    ours = json.loads((tmp_path / "ev" / "evaluation.json").read_text())["evaluation"]["test"]
    trained = json.loads((tiny_run / "summary.json").read_text())["evaluation"]["test"]
    for key in ("model", "climatology", "physics_baseline"):
        assert ours[key]["rmse"] == pytest.approx(trained[key]["rmse"], rel=1e-6)
    assert ours["noise_floor"]["rmse_physical"] == pytest.approx(trained["noise_floor"]["rmse_physical"], rel=1e-9)


def test_noise_floor_is_the_month_to_month_rmse_of_the_held_out_planets(tiny_run: Path, climate: Path) -> None:
    floor = json.loads((tiny_run / "summary.json").read_text())["evaluation"]["test"]["noise_floor"]
    store = astrobio.open_store(climate)
    raw = CubeReader(climate, normalize="none")
    sq, n = np.zeros(5), 0
    for run_id in store.split["test"]:
        x = raw.read(list(store.run(run_id).samples)).cubes.astype(np.float64)
        sq += ((x - x.mean(axis=0)) ** 2).sum(axis=(0, 2, 3, 4))
        n += x[:, 0].size
    expected = np.sqrt(sq / n)
    got = [floor["rmse_physical"][v] for v in ("ta", "ua", "va", "hus", "wap")]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    model = json.loads((tiny_run / "summary.json").read_text())["evaluation"]["test"]["model"]["rmse_physical"]
    assert floor["model_multiple"]["ta"] == pytest.approx(model["ta"] / floor["rmse_physical"]["ta"])
    assert floor["runs"] == len(store.split["test"]) and all(m > 1 for m in floor["model_multiple"].values())


def test_another_store_is_read_with_the_runs_normalization(emulator, climate: Path, tmp_path: Path) -> None:
    # two test planets and two training planets in a store of their own: its own normalization
    # (from its "train" split, here empty, so over all runs) differs from the run's
    runs = ["trappist-1_e", "design-f20", *astrobio.open_store(climate).split["train"][:2]]
    other = _copy(climate, tmp_path / "mine.zarr", runs)
    assert astrobio.open_store(other).manifest["content_digest"] != emulator.store.manifest["content_digest"]
    mine = evaluate_store(emulator, other)
    own = evaluate_store(emulator, climate)
    assert mine.summary["held_out_split"] == "all" and mine.summary["evaluation"]["all"]["n_samples"] == 16
    for run_id in ("trappist-1_e", "design-f20"):
        a, b = mine.summary["evaluation"]["all"]["runs"][run_id], own.summary["evaluation"]["test"]["runs"][run_id]
        assert a["model"] == pytest.approx(b["model"], rel=1e-4)
        assert a["physics_baseline"] == pytest.approx(b["physics_baseline"], rel=1e-4)
    # a store with the parameter columns in another order (and one extra) is reordered, not refused
    shuffled = _copy(climate, tmp_path / "shuffled.zarr", runs[:1], param_columns=[8, 0, 1, 2, 3, 4, 5, 6, 7])
    got = evaluate_store(emulator, shuffled).summary["evaluation"]["all"]["runs"]["trappist-1_e"]["model"]
    assert got == pytest.approx(own.summary["evaluation"]["test"]["runs"]["trappist-1_e"]["model"], rel=1e-4)


def test_mismatched_stores_are_refused_naming_the_difference(emulator, climate: Path, tmp_path: Path, capsys) -> None:
    store = astrobio.open_store(climate)
    vs, ps = store.variables, store.params
    renamed = [Variable("tas" if v.name == "ta" else v.name, v.units, v.valid_range, v.long_name) for v in vs]
    celsius = [Variable(v.name, "degC" if v.name == "ta" else v.units, (None, None), v.long_name) for v in vs]
    coarse = dict(store.manifest["coords"], lat={"values": store.manifest["coords"]["lat"]["values"][::2],
                                                  "units": "degrees_north"})
    cases = {
        "variables": dict(variables=renamed),
        "'degC'": dict(variables=celsius),
        "grid": dict(cube=lambda c: np.ascontiguousarray(c[:, :, :, ::2]), coords=coarse),
        "lacks the planet parameter(s) surface_pressure": dict(param_columns=[0, 1, 2, 3, 4, 5, 6, 8]),
        "its lat coordinate differs": dict(coords=dict(store.manifest["coords"], lat={
            "values": [-x for x in store.manifest["coords"]["lat"]["values"]], "units": "degrees_north"})),
    }
    for i, (fragment, change) in enumerate(cases.items()):
        bad = _copy(climate, tmp_path / f"bad{i}.zarr", ["trappist-1_e"], **change)
        with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            evaluate_store(emulator, bad)
        assert main(["evaluate", str(emulator.run_dir), "--store", str(bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0]


def test_ensemble_summary_has_calibration_and_evaluate_plots_reliability(ensemble_run: Path, climate: Path, tmp_path: Path) -> None:
    summary = json.loads((ensemble_run / "summary.json").read_text())
    calib = summary["evaluation"]["test"]["calibration"]
    assert calib["members"] == 2 and set(calib["variables"]) == {"ta", "ua", "va", "hus", "wap"}
    for v, c in calib["variables"].items():
        assert math.isfinite(c["spread_skill"]) and c["spread_skill"] > 0 and c["crps"] > 0
        assert 0 <= min(c["coverage"]) and max(c["coverage"]) <= 1 and c["coverage"] == sorted(c["coverage"])
        assert c["verdict"] in ("spread too narrow", "calibrated", "spread too wide")
    assert "noise_floor" in summary["evaluation"]["test"]
    em = load_emulator(ensemble_run)
    assert em.ensemble and len(em.members) == 2
    result = evaluate_store(em, climate, out_dir=tmp_path / "ev")
    again = result.summary["evaluation"]["test"]["calibration"]["variables"]["ta"]
    assert again["spread_skill"] == pytest.approx(calib["variables"]["ta"]["spread_skill"], rel=1e-5)
    assert (tmp_path / "ev" / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert "ensemble calibration (2 members)" in result.table
    ds = em.predict("earth")
    assert "ta_spread" in ds and ds["ta"].attrs["ancillary_variables"] == "ta_spread"
    assert float(ds["ta_spread"].min()) >= 0 and float(ds["ta_spread"].max()) > 0


def test_simulate_results_become_an_evaluable_store_with_one_command(emulator, climate: Path, tmp_path: Path, capsys) -> None:
    """`astrobio simulate` results (here: the shipped runs of two test planets, saved as
    `astrobio simulate` saves a run) -> `astrobio datasets pack-climate ... --store` -> evaluate."""
    from astrobio.simulate.output import SimulationResult, save_result

    store = astrobio.open_store(climate)
    raw = CubeReader(climate, normalize="none")
    coords = {k: np.asarray(store.manifest["coords"][k]["values"]) for k in ("level", "lat", "lon")}
    for run_id in ("trappist-1_e", "design-f20"):
        run = store.run(run_id)
        data = raw.read(list(run.samples)).cubes
        save_result(SimulationResult(
            data=data, surface={}, coords={**coords, "month": np.arange(9, 13)},
            units={v.name: v.units for v in store.variables},
            provenance={"planet": dict(run.attrs["spec"]), "campaign": {"drift_K_per_60d": run.attrs["drift_K_per_60d"]}}),
            tmp_path / "gcm_runs" / run_id)
    out = tmp_path / "mine.zarr"
    assert main(["datasets", "pack-climate", str(tmp_path / "gcm_runs"), "--split", "test=trappist-1_e,design-f20",
                 "--store", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert main(["evaluate", str(emulator.run_dir), "--store", str(out)]) == 0
    table = capsys.readouterr().out
    assert "all (8)" in table and "run trappist-1_e" in table
    mine = evaluate_store(emulator, out).summary["evaluation"]["all"]["runs"]["trappist-1_e"]["model"]
    own = evaluate_store(emulator, climate).summary["evaluation"]["test"]["runs"]["trappist-1_e"]["model"]
    assert mine == pytest.approx(own, rel=1e-3)  # the pack stores float16: the same fields to ~3 digits
