"""The physics baseline fitted on a store's training planets (`astrobio.models.PhysicsBaseline`):
read once through the Rust core, in physical units, when the task is built."""

from __future__ import annotations

import logging

import numpy as np
import torch

from ....errors import ConfigError
from ....models import PhysicsBaseline, fit_physics_baseline
from ....models.linear import LinearDeparture, fit_linear_departure
from ....reader import CubeReader
from ....stores.cube import Store

__all__ = ["fit_store_baseline", "read_departures", "fit_store_linear", "fit_indices", "FIT_BUDGET_BYTES"]

log = logging.getLogger(__name__)

#: Memory the fits of the physics baseline and the linear stage may hold: they keep their training
#: samples in memory (with float64 working copies, ~24 bytes per value); beyond it they are fitted
#: on an even subsample of every training run's samples (consecutive months of a run are close,
#: so a few per run carry the information).
FIT_BUDGET_BYTES = 4 << 30
_FIT_BYTES_PER_VALUE = 24


def fit_indices(store: Store, indices: np.ndarray, budget: int | None = None) -> np.ndarray:
    """The training samples the baseline and linear fits read: all of `indices` when they fit in
    `budget` bytes (default `FIT_BUDGET_BYTES`), else an even subsample of each run's samples.

    Raises:
        ConfigError: not even one sample fits.
    """
    budget = FIT_BUDGET_BYTES if budget is None else budget
    per_sample = int(np.prod(store.sample_shape)) * _FIT_BYTES_PER_VALUE
    limit = max(0, budget // per_sample)
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) <= limit:
        return indices
    runs: dict[int, list[int]] = {}
    for i, run in zip(indices.tolist(), store.run_positions(indices).tolist()):
        runs.setdefault(run, []).append(i)
    if limit == 0:
        raise ConfigError(f"one sample of this store takes {per_sample / 2**30:.1f} GiB to fit the physics baseline, over the "
                          f"{budget / 2**30:.1f} GiB budget (astrobio.train.tasks.datacube.baseline.FIT_BUDGET_BYTES)")
    groups = list(runs.values())
    if len(groups) > limit:  # more runs than samples that fit: one sample each of evenly spaced runs
        groups = [groups[k] for k in np.unique(np.linspace(0, len(groups) - 1, limit).round().astype(int))]
    each = max(1, limit // len(groups))
    picked = [np.asarray(members)[np.unique(np.linspace(0, len(members) - 1, min(each, len(members))).round().astype(int))]
              for members in groups]
    chosen = np.concatenate(picked)
    log.info("fitting the physics baseline and linear stage on %d of %d training samples (%d runs, up to %d per run; "
             "memory budget %.1f GiB)", len(chosen), len(indices), len(groups), each, budget / 2**30)
    return chosen


def _read_physical(store: Store, indices: np.ndarray, normalize: str, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, CubeReader]:
    reader = CubeReader(store.path, normalize=normalize)
    norm, pnorm = reader.normalization(), reader.params_normalization()
    cubes, params = [], []
    for start in range(0, len(indices), batch_size):
        batch = reader.read(indices[start : start + batch_size])
        cubes.append(norm.to_physical(batch.cubes.astype(np.float64)).astype(np.float32))
        params.append(pnorm.to_physical(batch.params.astype(np.float64)))
    return np.concatenate(cubes), np.concatenate(params), reader


def fit_store_baseline(store: Store, train_indices: np.ndarray, normalize: str) -> PhysicsBaseline:
    """The baseline of `store` fitted on `train_indices` (normalized as the reader does)."""
    cubes, params, reader = _read_physical(store, train_indices, normalize)
    norm, pnorm = reader.normalization(), reader.params_normalization()
    return fit_physics_baseline(cubes, params, [v.name for v in store.variables], [p.name for p in store.params],
                                norm.mean, norm.scale, pnorm.mean, pnorm.scale)


@torch.no_grad()
def read_departures(baseline: PhysicsBaseline, store: Store, indices: np.ndarray, normalize: str,
                    batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalized parameters [N, P], departures [N, V, L, H, W], departure scale [N, V, L, H, W])
    of the samples `indices`: the departures from the baseline in the units the network predicts
    them (`PhysicsBaseline.terms`); where the departure scale vanishes (no humidity in the
    baseline) the departure counts as 0."""
    reader = CubeReader(store.path, normalize=normalize)
    params, departures, scales = [], [], []
    for start in range(0, len(indices), batch_size):
        batch = reader.read(indices[start : start + batch_size])
        base_t, scale_t = baseline.terms(torch.from_numpy(np.ascontiguousarray(batch.params)).double())
        cubes, base, scale = batch.cubes.astype(np.float64), base_t.numpy(), scale_t.numpy()
        departures.append(np.where(scale > 1e-12, (cubes - base) / np.where(scale > 1e-12, scale, 1.0), 0.0).astype(np.float32))
        scales.append(scale.astype(np.float32))
        params.append(np.asarray(batch.params, np.float64))
    return np.concatenate(params), np.concatenate(departures), np.concatenate(scales)


def fit_store_linear(baseline: PhysicsBaseline, store: Store, indices: np.ndarray, normalize: str,
                     input_columns: list[int] | None) -> LinearDeparture:
    """The linear departure stage (`astrobio.models.linear`) fitted on the training samples
    `indices`, its penalties chosen leaving one training planet out at a time."""
    params, departures, scales = read_departures(baseline, store, indices, normalize)
    planet = store.run_positions(indices)  # one group per run (planet)
    inputs = params if input_columns is None else params[:, input_columns]
    return fit_linear_departure(inputs, departures, planet, scales)
