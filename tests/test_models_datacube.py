"""The datacube emulator and the physics-constraint terms: shapes, the climatology start, and
known answers for each documented formula. No training here (fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astrobio.models import KAPPA_DRY_AIR, DatacubeEmulator, PhysicsLoss, humidity_negativity, static_instability


@pytest.mark.parametrize("shape", [(5, 10, 32, 64), (5, 4, 8, 16), (2, 1, 3, 5)])
def test_emulator_output_shape_and_starts_at_the_climatology(shape):
    torch.manual_seed(0)
    model = DatacubeEmulator(9, shape)
    params = torch.linspace(-1, 1, 2 * 9).reshape(2, 9)
    assert model(params).shape == (2, *shape)
    clim = torch.arange(math.prod(shape), dtype=torch.float32).reshape(shape) / 100
    model.init_base(clim)
    out = model(params)  # zero-initialized head: exactly the climatology before training
    torch.testing.assert_close(out, clim.expand_as(out), rtol=0, atol=0)
    out.sum().backward()  # gradients reach the head, so training moves away from the baseline
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0


def test_emulator_rejects_bad_inputs():
    model = DatacubeEmulator(3, (2, 2, 4, 4))
    with pytest.raises(ValueError, match=r"params must be \[B, 3\]"):
        model(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="channels"):  # the datacube task turns it into a ConfigError
        DatacubeEmulator(3, (2, 2, 4, 4), channels=[8])


def test_humidity_negativity_known_answer():
    q = torch.tensor([-1e-3, 0.0, 2e-3, -2e-3])
    # mean(max(0, -q)^2) / s^2 = ((1e-3)^2 + (2e-3)^2) / 4 / (1e-3)^2 = 5 / 4
    assert humidity_negativity(q, 1e-3).item() == pytest.approx(1.25)
    assert humidity_negativity(q.abs(), 1e-3).item() == 0.0


def test_static_instability_known_answers():
    sigma = torch.tensor([0.5, 1.0])  # any order: the surface is the largest sigma
    shape = (1, 2, 1, 1)
    isothermal = torch.full(shape, 280.0)
    assert static_instability(isothermal, sigma).item() == 0.0  # theta = T sigma^-k grows upward
    neutral = torch.tensor([300.0 * 0.5 ** KAPPA_DRY_AIR, 300.0]).reshape(shape)  # theta constant = 300 K
    assert static_instability(neutral, sigma).item() == pytest.approx(0.0, abs=1e-9)
    # theta aloft 10 K below theta at the surface: penalty (10 K)^2 / s^2 over one level pair
    t_top = (300.0 - 10.0) * 0.5 ** KAPPA_DRY_AIR
    unstable = torch.tensor([t_top, 300.0], dtype=torch.float64).reshape(shape)
    assert static_instability(unstable, sigma.double(), scale=5.0).item() == pytest.approx(100.0 / 25.0, rel=1e-9)


def test_physics_loss_works_in_physical_units():
    # two variables (ta, hus), two levels; per-variable statistics
    mean, std = torch.tensor([250.0, 1e-3]), torch.tensor([20.0, 1e-3])
    loss = PhysicsLoss(mean, std, [1.0, 0.5], ta_index=0, hus_index=1, humidity_weight=2.0, stability_weight=0.5)
    x = torch.zeros(1, 2, 2, 1, 1)
    x[0, 1] = -3.0  # hus = -3 * 1e-3 + 1e-3 = -2e-3 everywhere: L_q = (2e-3)^2 / (1e-3)^2 = 4
    total, terms = loss(x)
    assert terms["humidity"].item() == pytest.approx(4.0)
    assert terms["stability"].item() == 0.0  # isothermal 250 K
    assert total.item() == pytest.approx(2.0 * 4.0)
    # per-level statistics [V, L] are applied level by level
    per_level = PhysicsLoss(torch.tensor([[250.0, 250.0], [1e-3, 0.0]]), torch.tensor([[20.0, 20.0], [1e-3, 1e-3]]),
                            [1.0, 0.5], ta_index=0, hus_index=1)
    x = torch.zeros(1, 2, 2, 1, 1)
    x[0, 1, 1] = -1.0  # level 1 only: hus = -1e-3 there, 1e-3 at level 0 -> mean(relu)^2 = (1e-6)/2 / 1e-6
    assert per_level.terms(x)["humidity"].item() == pytest.approx(0.5)
    np.testing.assert_allclose(per_level.physical(x, 1)[0].flatten().numpy(), [1e-3, -1e-3], rtol=1e-6)
