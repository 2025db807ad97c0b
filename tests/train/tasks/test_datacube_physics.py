"""The datacube emulator's physics baseline, the split override and the k-fold command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import astrobio
from astrobio.climate_scaling import clausius_clapeyron_factor, equilibrium_temperature, field_scale
from astrobio.models import PhysicsBaseline, fit_physics_baseline
from astrobio.train.cli import main
from astrobio.train.tasks.datacube.kfold import aggregate, planet_folds
from train_fixtures import build_climate_fixture

VARS = ["ta", "ua", "va", "hus", "wap"]
NAMES = ["instellation", "synchronous", "surface_pressure", "equilibrium_temperature"]


def _planets(n: int, rng: np.random.Generator) -> np.ndarray:
    s = rng.uniform(0.3, 1.5, n)
    return np.column_stack([s, np.arange(n) % 2, rng.uniform(0.5, 2.0, n), equilibrium_temperature(s)])


def _exact_cubes(raw: np.ndarray, pattern: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cubes that follow the baseline's model exactly: x_v = pattern[regime, v] * s_v ** b_v."""
    out = []
    for row in raw:
        t_eq, ps, g = row[3], row[2], int(row[1])
        scale = np.array([field_scale(v, np.array([t_eq]), np.array([ps]))[0] ** b[i] for i, v in enumerate(VARS)])
        out.append(pattern[g] * scale[:, None, None, None])
    return np.stack(out)


def test_the_physics_baseline_recovers_an_exact_scaling_law():
    """Fields that scale exactly as the baseline assumes (with exponents 1, 0, 0, 0.8, 1) are
    reproduced on new planets of both regimes, and the fitted exponents are the true ones."""
    rng = np.random.default_rng(0)
    pattern = rng.uniform(0.5, 2.0, (2, 5, 3, 4, 6))
    b = np.array([1.0, 0.0, 0.0, 0.8, 1.0])
    train, test = _planets(20, rng), _planets(6, rng)
    cube_mean, cube_scale = rng.normal(0, 1, (5, 3)), rng.uniform(0.5, 2, (5, 3))
    p_mean, p_scale = train.mean(0), train.std(0) + 1e-9
    base = fit_physics_baseline(_exact_cubes(train, pattern, b), train, VARS, NAMES, cube_mean, cube_scale, p_mean, p_scale)
    np.testing.assert_allclose(base.exponent.numpy()[[0, 3, 4]], b[[0, 3, 4]], atol=1e-6)
    normalized = base(torch.as_tensor((test - p_mean) / p_scale, dtype=torch.float64)).numpy()
    physical = normalized * cube_scale[None, :, :, None, None] + cube_mean[None, :, :, None, None]
    np.testing.assert_allclose(physical, _exact_cubes(test, pattern, b), rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 5.0), st.floats(0.05, 5.0))
def test_scalings_are_monotonic_where_physics_says_so(s1, s2):
    lo, hi = sorted((s1, s2))
    t_lo, t_hi = equilibrium_temperature(lo), equilibrium_temperature(hi)
    assert t_lo <= t_hi  # more sunlight, warmer
    assert clausius_clapeyron_factor(t_lo) <= clausius_clapeyron_factor(t_hi)  # warmer air holds more water
    np.testing.assert_allclose(equilibrium_temperature(1.0), (1367 * 0.7 / (4 * 5.670374419e-8)) ** 0.25)


def test_fitted_exponents_never_exceed_the_physical_scaling():
    """A field that grows like T_eq^3 across few planets is rescaled by T_eq^1 at most."""
    rng = np.random.default_rng(2)
    train = _planets(8, rng)
    pattern = rng.uniform(0.5, 2.0, (2, 5, 2, 3, 4))
    cubes = _exact_cubes(train, pattern, np.array([3.0, 0.0, 0.0, -2.0, 1.0]))
    base = fit_physics_baseline(cubes, train, VARS, NAMES, np.zeros((5, 2)), np.ones((5, 2)), np.zeros(4), np.ones(4))
    np.testing.assert_allclose(base.exponent.numpy()[[0, 3, 4]], [1.0, 0.0, 1.0], atol=1e-9)


def test_a_regime_missing_from_training_falls_back_to_the_pooled_mean():
    rng = np.random.default_rng(1)
    train = _planets(6, rng)
    train[:, 1] = 0.0  # fast rotators only
    cubes = rng.uniform(1, 2, (6, 5, 2, 3, 4))
    base = fit_physics_baseline(cubes, train, VARS, NAMES, np.zeros((5, 2)), np.ones((5, 2)), np.zeros(4), np.ones(4))
    np.testing.assert_allclose(base.regime_mean[1].numpy(), base.regime_mean[0].numpy())
    assert isinstance(base, PhysicsBaseline) and torch.isfinite(base.regime_mean).all()


#: A small network, two epochs, no progress bar, logger or plots: the runs of the k-fold and ensemble tests.
TINY = ["--max-epochs", "2", "--set", "model.options.channels=[8, 8]", "--set", "model.options.hidden=16",
        "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "trainer.plots=false"]


@pytest.fixture(scope="module")
def twelve_planets(tmp_path_factory):
    return build_climate_fixture(tmp_path_factory.mktemp("kfold") / "c.zarr", planets=12, split=(8, 2, 2), seed=5)


def test_planet_folds_test_every_planet_once_with_both_regimes(twelve_planets):
    store = astrobio.open_store(twelve_planets)
    folds = planet_folds(store, 3)
    tested = [r for f in folds for r in f["test"]]
    assert sorted(tested) == sorted(r.id for r in store.runs) and len(tested) == len(set(tested))
    sync = {r.id: r.id.endswith(("1", "3", "5", "7", "9")) for r in store.runs}  # the fixture alternates regimes
    for f in folds:
        assert not (set(f["train"]) & set(f["val"])) and not (set(f["train"]) | set(f["val"])) & set(f["test"])
        assert {sync[r] for r in f["test"]} == {True, False}
        assert f["val"] and f["train"]
    with pytest.raises(astrobio.ConfigError, match="at least 2 folds"):
        planet_folds(store, 1)
    with pytest.raises(astrobio.ConfigError, match="needs at least 14 planets"):
        planet_folds(store, 7)


def test_a_split_override_is_checked(twelve_planets, tmp_path, capsys):
    base = ["--store", str(twelve_planets), "--output-dir", str(tmp_path / "r"), "--max-epochs", "1",
            "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "trainer.plots=false"]
    assert main([*base, "--set", "data.split={train: [planet-00], val: [planet-00]}"]) == 2
    assert "puts run 'planet-00' in both train and val" in capsys.readouterr().err
    assert main([*base, "--set", "data.split={train: [planet-00], val: [nowhere]}"]) == 2
    assert "no run 'nowhere'" in capsys.readouterr().err


def test_kfold_reports_mean_and_spread_and_continues_after_a_crash(twelve_planets, tmp_path, capsys):
    out = tmp_path / "kfold"
    args = ["--kfold", "3", "--store", str(twelve_planets), "--output-dir", str(out), *TINY]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "k-fold by planet" in printed and "skill vs physics" in printed
    doc = json.loads((out / "kfold.json").read_text())
    assert len(doc["folds"]) == 3
    skills = [f["metrics"]["skill"]["climatology"]["ta"] for f in doc["folds"]]
    agg = doc["aggregate"]["skill"]["climatology"]["ta"]
    assert agg["mean"] == pytest.approx(np.mean(skills)) and agg["std"] == pytest.approx(np.std(skills, ddof=1))
    for f in doc["folds"]:  # each fold's summary holds the split it trained on, test evaluated beside both baselines
        summary = json.loads((out / f"fold-{f['fold']}" / "summary.json").read_text())
        assert summary["config"]["data"]["split"] == f["split"]
        assert set(summary["evaluation"]["test"]) >= {"model", "climatology", "physics_baseline", "skill_physics_baseline"}
    # a rerun keeps finished folds (no retraining) and recomputes the same aggregate
    stamp = (out / "fold-1" / "summary.json").stat().st_mtime_ns
    (out / "fold-2" / "summary.json").unlink()  # as if the command died during the last fold
    assert main(args) == 0
    assert (out / "fold-1" / "summary.json").stat().st_mtime_ns == stamp
    again = json.loads((out / "kfold.json").read_text())
    assert again["aggregate"]["skill"]["climatology"]["ta"]["mean"] == pytest.approx(agg["mean"], abs=0.05)


def test_kfold_is_for_the_climate_emulator(capsys):
    assert main(["--kfold", "3", "--model", "graph"]) == 2
    assert "--kfold: model 'graph' has no k-fold evaluation" in capsys.readouterr().err


def test_aggregate_of_one_fold_has_zero_spread():
    fold = {"metrics": {"skill": {"climatology": {"all": 0.2, "ta": 0.3}}, "rmse_physical": {"model": {"ta": 1.0}}}}
    agg = aggregate([fold])
    assert agg["skill"]["climatology"]["ta"] == {"mean": 0.3, "std": 0.0, "min": 0.3, "max": 0.3}


def test_an_ensemble_evaluates_the_mean_of_its_seeds_and_keeps_finished_members(twelve_planets, tmp_path, capsys):
    out = tmp_path / "ens"
    args = ["--ensemble", "2", "--store", str(twelve_planets), "--output-dir", str(out), *TINY]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "mean prediction of 2 datacube runs (seeds 0, 1)" in printed and "member 1 (seed 1" in printed
    summary = json.loads((out / "summary.json").read_text())
    members = summary["ensemble"]["members"]
    assert [m["seed"] for m in members] == [0, 1]
    for m in members:  # each member is a normal run with its own seed
        assert json.loads((out / f"member-{m['member']}" / "summary.json").read_text())["config"]["trainer"]["seed"] == m["seed"]
    test = summary["evaluation"]["test"]
    assert set(test) >= {"model", "climatology", "physics_baseline", "skill_physics_baseline"}
    # the RMSE of the mean prediction is never above the members' mean RMSE (the norm is convex)
    assert test["model"]["rmse"] <= np.mean([m["rmse"] for m in members]) + 1e-9
    assert members[0]["rmse"] != members[1]["rmse"]  # the seeds differ
    # a rerun keeps finished members and evaluates the same mean
    stamp = (out / "member-0" / "summary.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "member-0" / "summary.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "summary.json").read_text())["evaluation"]["test"]["model"]["rmse"] == pytest.approx(test["model"]["rmse"])


def test_an_ensemble_is_for_the_climate_emulator(capsys):
    assert main(["--ensemble", "2", "--model", "graph"]) == 2
    assert "--ensemble: model 'graph' has no seed ensembles" in capsys.readouterr().err
    assert main(["--ensemble", "1"]) == 2
    assert "at least 2 members" in capsys.readouterr().err
    assert main(["--ensemble", "2", "--kfold", "3"]) == 2
    assert "drop --mode full, --resume and --ensemble" in capsys.readouterr().err
