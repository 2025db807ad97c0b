"""The bootstrap over planets (`astrobio.emulator.intervals`): properties of the interval that
any correct percentile bootstrap of the pooled skill has."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrobio.emulator.intervals import bootstrap_skill, planet_intervals
from astrobio.errors import ConfigError

rmse = st.floats(min_value=0.01, max_value=10.0, allow_nan=False)
planets = st.lists(st.tuples(rmse, rmse, st.integers(1, 12)), min_size=2, max_size=25)


def _maps(rows):
    ids = [f"planet-{i:02d}" for i in range(len(rows))]
    return ({i: r[0] for i, r in zip(ids, rows)}, {i: r[1] for i, r in zip(ids, rows)},
            {i: float(r[2]) for i, r in zip(ids, rows)})


@settings(max_examples=60, deadline=None)
@given(planets)
def test_interval_contains_the_pooled_skill(rows) -> None:
    m, b, w = _maps(rows)
    s = bootstrap_skill(m, b, w, draws=400)
    pooled = 1 - math.sqrt(sum(w[i] * m[i] ** 2 for i in m) / sum(w[i] * b[i] ** 2 for i in m))
    assert s["point"] == pytest.approx(pooled, rel=1e-12, abs=1e-12)
    assert s["low"] - 1e-12 <= s["point"] <= s["high"] + 1e-12
    assert s["planets"] == len(rows)


@settings(max_examples=40, deadline=None)
@given(st.tuples(rmse, rmse), st.integers(2, 20))
def test_identical_planets_give_a_zero_width_interval(one, n) -> None:
    ids = [f"p{i}" for i in range(n)]
    s = bootstrap_skill(dict.fromkeys(ids, one[0]), dict.fromkeys(ids, one[1]))
    assert s["low"] == pytest.approx(s["high"], abs=1e-12) == pytest.approx(s["point"], abs=1e-12)
    assert s["point"] == pytest.approx(1 - one[0] / one[1], abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(planets, st.randoms(use_true_random=False))
def test_the_order_planets_are_listed_in_does_not_matter(rows, rnd) -> None:
    m, b, w = _maps(rows)
    order = list(m)
    rnd.shuffle(order)
    again = bootstrap_skill({i: m[i] for i in order}, {i: b[i] for i in reversed(order)}, {i: w[i] for i in order})
    assert again == bootstrap_skill(m, b, w)


@settings(max_examples=30, deadline=None)
@given(planets)
def test_a_model_better_on_every_planet_has_a_positive_interval(rows) -> None:
    m, b, w = _maps(rows)
    better = {i: 0.5 * b[i] for i in b}  # half the baseline's error on every planet: skill 0.5 on each
    s = bootstrap_skill(better, b, w)
    assert s["low"] == pytest.approx(0.5) and s["high"] == pytest.approx(0.5)
    worse = {i: b[i] * (1.1 + m[i]) for i in b}  # worse everywhere: the whole interval below 0
    assert bootstrap_skill(worse, b, w)["high"] < 0


def test_planet_intervals_per_baseline_and_variable_and_refusals() -> None:
    runs = {f"p{i}": {"model": 0.5 + 0.1 * i, "climatology": 1.0 + 0.05 * i, "physics_baseline": 0.7, "n_samples": 4,
                      "rmse_physical": {"model": {"ta": 1.0 + i}, "climatology": {"ta": 3.0},
                                        "physics_baseline": {"ta": 2.0 + 0.5 * i}}} for i in range(5)}
    got = planet_intervals(runs)
    assert set(got) == {"climatology", "physics_baseline"} and set(got["climatology"]) == {"all", "ta"}
    ta = np.array([1.0 + i for i in range(5)])
    assert got["climatology"]["ta"]["point"] == pytest.approx(1 - math.sqrt((ta ** 2).mean() / 9.0))
    assert planet_intervals({"p0": runs["p0"]}) == {}  # one planet: no interval
    with pytest.raises(ConfigError, match="same planets"):
        bootstrap_skill({"a": 1.0, "b": 1.0}, {"a": 1.0})
    with pytest.raises(ConfigError, match="positive"):
        bootstrap_skill({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 0.0})
