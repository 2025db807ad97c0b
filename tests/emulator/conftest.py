"""Fixtures of the emulator tests: the real default climate store (built from the shipped
ExoPlaSim pack), a one-epoch run on it and a two-member one-epoch ensemble (seeds 0 and 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrobio.datasets.climate import build_climate_store
from astrobio.train import TrainConfig, train


def tiny_config(store: Path, out: Path) -> TrainConfig:
    cfg = TrainConfig()
    cfg.data.store = str(store)
    t = cfg.trainer
    t.output_dir, t.max_epochs, t.progress_bar, t.logger, t.plots = str(out), 1, False, "none", False
    return cfg


@pytest.fixture(scope="session")
def climate(tmp_path_factory) -> Path:
    return build_climate_store(tmp_path_factory.mktemp("emulator-store") / "climate.zarr")


@pytest.fixture(scope="session")
def tiny_run(climate: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("emulator-run") / "run"
    train(tiny_config(climate, out))
    return out


@pytest.fixture(scope="session")
def ensemble_run(climate: Path, tmp_path_factory) -> Path:
    from astrobio.train.tasks.datacube import DatacubeTask

    out = tmp_path_factory.mktemp("emulator-ensemble") / "ens"
    DatacubeTask().run_ensemble(tiny_config(climate, out), 2)
    return out
