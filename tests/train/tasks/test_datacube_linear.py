"""The climate emulator's linear stage: ridge departures with penalties chosen leaving one
planet out (`astrobio.models.linear`), and how the module adds it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from astrobio.models import LinearDeparture, fit_linear_departure

SHAPE = (2, 3, 4, 5)  # V, L, H, W


def _planets(n_planets: int, per: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = np.repeat(rng.normal(size=(n_planets, 3)), per, axis=0)
    return x + 0.01 * rng.normal(size=x.shape), np.repeat(np.arange(n_planets), per)


def test_a_linear_law_is_recovered_and_noise_is_shrunk_to_its_mean():
    """Variable 0 follows the inputs exactly; variable 1 is noise independent of them: the
    penalty chosen for 0 is small and its weights exact, for 1 the largest (its mean)."""
    rng = np.random.default_rng(0)
    x, groups = _planets(12, 4, rng)
    true_w = rng.normal(size=(3, *SHAPE[1:]))
    d = np.zeros((len(x), *SHAPE))
    d[:, 0] = 0.5 + np.einsum("nf,flhw->nlhw", x, true_w)
    d[:, 1] = np.repeat(rng.normal(size=(12, *SHAPE[1:])), 4, axis=0)
    lin = fit_linear_departure(x, d, groups)
    assert lin.penalty[0] <= 1.0 and lin.penalty[1] >= 300.0
    new = rng.normal(size=(5, 3))
    out = lin(torch.as_tensor(new, dtype=torch.float32)).numpy()
    want = 0.5 + np.einsum("nf,flhw->nlhw", new, true_w)
    assert np.abs(out[:, 0] - want).max() < 0.05 * np.abs(want).max()  # the least penalty shrinks a little
    assert np.abs(out[:, 1] - d[:, 1].mean(axis=0)).max() < 0.2 * np.abs(d[:, 1]).max()


def test_the_cube_error_weights_the_choice():
    """A departure that is exact where the scale is large and noise where it is 0 still counts
    as exact: the penalty is chosen on the cube error, not the departure's."""
    rng = np.random.default_rng(1)
    x, groups = _planets(10, 2, rng)
    d = np.zeros((len(x), *SHAPE))
    d[:, 0] = np.einsum("nf,flhw->nlhw", x, rng.normal(size=(3, *SHAPE[1:])))
    scale = np.ones_like(d)
    noisy = np.zeros(SHAPE[1:], bool)
    noisy[0] = True
    d[:, 0][:, noisy] = rng.normal(size=(len(x), int(noisy.sum()))) * 100
    scale[:, 0][:, noisy] = 0.0
    assert fit_linear_departure(x, d, groups, scale).penalty[0] <= 1.0
    assert fit_linear_departure(x, d, groups).penalty[0] > 1.0


def test_one_planet_gives_its_mean_and_bad_shapes_are_refused():
    x = np.ones((4, 2))
    d = np.arange(4 * np.prod(SHAPE), dtype=float).reshape(4, *SHAPE)
    lin = fit_linear_departure(x, d, np.zeros(4))
    np.testing.assert_allclose(lin(torch.ones(1, 2)).numpy()[0], d.mean(axis=0), rtol=1e-6)
    with pytest.raises(ValueError, match="must agree"):
        fit_linear_departure(x, d[:3], np.zeros(4))
    with pytest.raises(ValueError, match="positive"):
        fit_linear_departure(x, d, np.zeros(4), grid=[0.0])
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        lin(torch.ones(1, 3))


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-3, 3), n_planets=st.integers(3, 6), seed=st.integers(0, 2**16))
def test_the_fit_does_not_depend_on_where_the_inputs_are_centred(shift, n_planets, seed):
    """Ridge with an unpenalized intercept: shifting every input shifts nothing in the output."""
    rng = np.random.default_rng(seed)
    x, groups = _planets(n_planets, 2, rng)
    d = rng.normal(size=(len(x), *SHAPE))
    a = fit_linear_departure(x, d, groups)
    b = fit_linear_departure(x + shift, d, groups)
    probe = rng.normal(size=(3, 3))
    np.testing.assert_allclose(a(torch.as_tensor(probe, dtype=torch.float32)).numpy(),
                               b(torch.as_tensor(probe + shift, dtype=torch.float32)).numpy(), atol=1e-3)
    np.testing.assert_array_equal(a.penalty.numpy(), b.penalty.numpy())


@settings(max_examples=25, deadline=None)
@given(n_planets=st.integers(2, 6), per=st.integers(1, 3), seed=st.integers(0, 2**16),
       offset=st.floats(-50, 50))
def test_the_folds_errors_equal_a_refit_without_each_planet(n_planets, per, seed, offset):
    """The leave-one-planet-out errors come from the full sums less the held planet's; they
    must equal refitting on the other planets (inputs far from 0 included: no cancellation)."""
    from astrobio.models.linear import _lopo_errors, _solve

    rng = np.random.default_rng(seed)
    x, groups = _planets(n_planets, per, rng)
    x = x + offset
    d = rng.normal(size=(len(x), *SHAPE)) + np.einsum("nf,flhw->nlhw", x, rng.normal(size=(3, *SHAPE[1:])))[:, None]
    scale = rng.uniform(0.0, 2.0, size=d.shape)
    grid = (0.1, 10.0, 1000.0)
    want = np.zeros((len(grid), SHAPE[0]))
    for g in np.unique(groups):
        held = groups == g
        for k, penalty in enumerate(grid):
            xm, ym, w = _solve(x[~held], d[~held].reshape(int((~held).sum()), -1), penalty)
            pred = (ym + (x[held] - xm) @ w).reshape(d[held].shape)
            want[k] += ((scale[held] * (pred - d[held])) ** 2).sum(axis=(0, 2, 3, 4))
    got = _lopo_errors(x, d.reshape(len(x), -1), d, scale, groups, grid)
    np.testing.assert_allclose(got, want, rtol=1e-7)


def test_the_module_adds_the_linear_stage_to_the_networks_output():
    from types import SimpleNamespace

    from astrobio.train.tasks.datacube.module import EmulatorModule

    lin = LinearDeparture(np.zeros(2), np.full(SHAPE, 0.25), np.ones((2, *SHAPE)), np.ones(SHAPE[0]))
    net = torch.nn.Linear(2, int(np.prod(SHAPE)))
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.constant_(net.bias, 1.0)
    model = torch.nn.Sequential(net, torch.nn.Unflatten(1, SHAPE))
    module = EmulatorModule(model, SimpleNamespace(), history=None, total_steps=1, variables=["a", "b"], linear=lin)
    out = module.predict(torch.tensor([[1.0, 2.0]]))
    np.testing.assert_allclose(out.detach().numpy(), np.full((1, *SHAPE), 1.0 + 0.25 + 3.0))
    # the network's (noisy) inputs do not move the linear stage: it reads the clean parameters
    noisy = module.predict(torch.tensor([[1.0, 2.0]]), torch.tensor([[5.0, 5.0]]))
    torch.testing.assert_close(noisy, out)


def test_the_fits_read_an_even_subsample_of_every_run_when_memory_says_so(tmp_path, monkeypatch, capsys):
    import json

    import astrobio
    from astrobio.errors import ConfigError
    from astrobio.train.cli import main
    from astrobio.train.tasks.datacube import baseline as fits
    from train_fixtures import build_climate_fixture

    path = build_climate_fixture(tmp_path / "c.zarr", planets=8, split=(6, 1, 1))
    store = astrobio.open_store(path)
    train = store.samples("train")  # 6 runs x 12 months
    per_sample = int(np.prod(store.sample_shape)) * fits._FIT_BYTES_PER_VALUE
    assert np.array_equal(fits.fit_indices(store, train, budget=len(train) * per_sample), train)
    two_each = fits.fit_indices(store, train, budget=13 * per_sample)  # room for 13: two per run
    runs = [store.run_of(int(i)).id for i in two_each]
    assert sorted(set(runs)) == sorted(store.split["train"]) and all(runs.count(r) == 2 for r in set(runs))
    first = store.run(store.split["train"][0])
    assert first.start in two_each and first.start + first.count - 1 in two_each  # first and last month
    few = fits.fit_indices(store, train, budget=3 * per_sample)  # fewer than the runs: one each of three
    assert len(few) == 3 and len({store.run_of(int(i)).id for i in few}) == 3
    with pytest.raises(ConfigError, match="one sample of this store takes"):
        fits.fit_indices(store, train, budget=per_sample - 1)
    # a training whose fits are capped still trains and records how many samples they read
    monkeypatch.setattr(fits, "FIT_BUDGET_BYTES", 13 * per_sample)
    out = tmp_path / "run"
    assert main(["--store", str(path), "--output-dir", str(out), "--max-epochs", "1", "--set", "model.options.channels=[8, 8]",
                 "--set", "model.options.hidden=16", "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none",
                 "--set", "trainer.plots=false"]) == 0
    from astrobio.train.checkpoint import load_checkpoint

    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["astrobio"]["meta"]["baseline_fit_samples"] == 12
    assert json.loads((out / "summary.json").read_text())["evaluation"]["test"]["physics_baseline"]["rmse"] > 0
