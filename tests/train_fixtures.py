"""Fixture stores for the trainer tests, written through astrobio's public writer with the
climate part's layout (variables ta, ua, va, hus, wap on sigma levels; the 9 planet parameters
of `astrobio.datasets.climate.PARAMS`; one run of 12 monthly samples per planet; split by planet).

The fields are smooth functions of the parameters (plus a little noise), so an emulator can
learn them and beat the climatology: tests only; the product never trains on generated data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lightning as L
import numpy as np

import astrobio
from astrobio.datasets.climate import PARAMS, VARIABLES, run_params


def planet_cubes(spec: dict[str, float], sigma: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                 rng: np.random.Generator, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """cubes [12, 5, L, H, W] and params [12, 9] of one planet (12 samples of one climate, with
    a month-to-month wobble the parameters cannot predict, as in the GCM's monthly means)."""
    months = np.arange(1, 13)
    ms = np.sin(2 * np.pi * (months - 0.5) / 12)
    s, sync = spec["instellation"], spec["synchronous"]
    la = np.deg2rad(lat)[None, None, :, None]
    lo = np.deg2rad(lon)[None, None, None, :]
    sg = sigma[None, :, None, None]
    season = 0.15 * ms[:, None, None, None]  # small: no parameter says which month a sample is
    t_surf = (200.0 + 90.0 * np.sqrt(s) * np.cos(la) ** 2 + 12.0 * season * np.sin(la)
              + 25.0 * sync * np.cos(lo) * np.cos(la) + 0.004 * (spec["star_teff"] - 4000.0))
    ta = t_surf * sg ** 0.19  # theta = T sigma^-2/7 increases upward: statically stable
    ua = 25.0 * np.sin(2 * la) * (1.2 - sg) * (1 + 0.02 * spec["rotation_period"]) * (1 - 0.5 * sync) + 0 * lo
    va = 3.0 * np.sin(la) * np.cos(lo + season) * sg
    hus = 0.012 * s * np.exp(-3.0 * (1 - sg)) * np.cos(la) ** 2 * (1 + 0.2 * season * np.sin(la)) + 1e-5
    wap = 0.08 * np.cos(3 * la) * (1 - sg) * sg * (1 + sync * np.cos(lo))
    fields = [ta, ua, va, hus, wap]
    cube = np.stack([np.broadcast_to(f, (12, len(sigma), len(lat), len(lon))) for f in fields], axis=1).astype(np.float64)
    scales = np.array([noise, noise, noise * 0.3, 0.0, noise * 1e-3])[None, :, None, None, None]
    cube = cube + rng.normal(0.0, 1.0, cube.shape) * scales
    cube[:, 3] = np.abs(cube[:, 3])
    params = run_params({"instellation_earth": s, "star_teff_k": spec["star_teff"], "radius_earth": spec["radius"],
                         "gravity_ms2": spec["gravity"], "rotation_period_days": spec["rotation_period"],
                         "synchronous": sync, "surface_pressure_bar": spec["surface_pressure"]}, 12)
    return cube.astype(np.float32), params


def build_climate_fixture(path: Path, *, planets: int = 8, shape: tuple[int, int, int] = (4, 8, 16),
                          split: tuple[int, int, int] = (6, 1, 1), seed: int = 0, noise: float = 0.3,
                          names: tuple[str, ...] | None = None, **store_kwargs) -> Path:
    """A store at `path` with `planets` runs of 12 months; `split` = (train, val, test) planet counts;
    `names` renames the five variables; `store_kwargs` go to the writer (e.g. shard_samples)."""
    assert sum(split) == planets
    rng = np.random.default_rng(seed)
    lv, h, w = shape
    sigma = np.linspace(0.95, 0.1, lv)
    lat = np.linspace(-90 + 90 / h, 90 - 90 / h, h)
    lon = np.arange(w) * 360.0 / w
    runs = []
    for i in range(planets):
        spec = {"instellation": rng.uniform(0.4, 1.6), "star_teff": rng.uniform(2600, 6000), "radius": rng.uniform(0.8, 1.5),
                "gravity": rng.uniform(7, 12), "rotation_period": rng.uniform(1, 30), "synchronous": float(i % 2),
                "surface_pressure": rng.uniform(0.5, 2.0)}
        cubes, params = planet_cubes(spec, sigma, lat, lon, rng, noise)
        runs.append((f"planet-{i:02d}", cubes, params))
    ids = [r[0] for r in runs]
    n_train, n_val, _ = split
    splits = {"train": ids[:n_train], "val": ids[n_train : n_train + n_val], "test": ids[n_train + n_val :]}
    coords = {"level": {"name": "sigma", "values": sigma.tolist(), "units": "1"},
              "lat": {"values": lat.tolist(), "units": "degrees_north"}, "lon": {"values": lon.tolist(), "units": "degrees_east"}}
    variables = VARIABLES if names is None else [dataclasses.replace(v, name=n) for v, n in zip(VARIABLES, names)]
    return astrobio.write_store(path, runs, variables=variables, params=PARAMS, split=splits, coords=coords,
                                provenance={"source": "trainer test fixture", "kind": "generated"}, **store_kwargs)


def real_climate_slice(path: Path, work: Path, split: dict[str, list[str]] | None = None) -> Path:
    """A store at `path` holding a few planets of the real default climate store (built from the
    shipped ExoPlaSim pack into `work`), unchanged, with `split` (planet ids by split)."""
    import zarr

    from astrobio.datasets.climate import build_climate_store
    from astrobio.stores import StoreWriter, open_store

    src = build_climate_store(work / "climate.zarr")
    store = open_store(src)
    # default: three training planets, one val and one test planet, as the shipped store splits them
    split = split or {"train": store.split["train"][:3], "val": store.split["val"][:1], "test": store.split["test"][:1]}
    cubes = zarr.open_array(src / "cubes", mode="r")
    params = zarr.open_array(src / "params", mode="r")
    with StoreWriter(path, variables=store.variables, params=store.params, sample_shape=store.sample_shape,
                     coords=store.manifest.get("coords"), name="slice of the default climate store",
                     provenance={"kind": "simulation", "source": str(src), "runs": [r for s in split.values() for r in s]}) as w:
        for run_id in [r for s in split.values() for r in s]:
            run = store.run(run_id)
            w.add_run(run_id, np.asarray(cubes[run.start : run.start + run.count]),
                      np.asarray(params[run.start : run.start + run.count]))
        return w.commit(split)


def ecoli_core_graphs(path: Path) -> Path:
    """A graph store with cobra's e_coli_core network only (real, small: 72 metabolites)."""
    from astrobio.datasets.sources import package_file
    from astrobio.ingest.metabolic import ingest_metabolic

    return ingest_metabolic({"e_coli_core": package_file("cobra", "data/textbook.xml.gz")}, path)


class Crash(L.Callback):
    """Simulates the process dying after optimizer step `at` (before that step's checkpoint)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.at:
            raise RuntimeError("simulated crash")
