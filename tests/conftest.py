"""The fixture factories of the test suite: stores built through astrobio's public writers, and
the real source files the default dataset is built from (tests only; the product never
substitutes generated data for real data)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import astrobio
from astrobio._home import data_home
from astrobio.datasets.sources import package_file
from astrobio.errors import DataNotFoundError, DependencyError
from astrobio.ingest.metabolic import ingest_metabolic

# Tests that build into a temporary data home share one cache of the real source packages (fetched
# once per machine on first use, as for a user) instead of downloading them again per test.
os.environ.setdefault("ASTROBIO_SOURCES", str(data_home() / "sources"))


@dataclass
class Fixture:
    path: Path
    runs: dict[str, np.ndarray]        # run id -> raw cubes [T, V, L, H, W]
    params: dict[str, np.ndarray]      # run id -> raw params [T, P]
    variables: list[astrobio.Variable]

    @property
    def cubes(self) -> np.ndarray:
        return np.concatenate(list(self.runs.values()))

    @property
    def all_params(self) -> np.ndarray:
        return np.concatenate(list(self.params.values()))

    def run_of(self, sample: int) -> str:
        start = 0
        for rid, c in self.runs.items():
            if sample < start + len(c):
                return rid
            start += len(c)
        raise IndexError(sample)


def build_fixture(
    path: Path,
    *,
    shape: tuple[int, int, int, int] = (3, 4, 8, 16),
    run_lengths: tuple[int, ...] = (4, 3, 5),
    seed: int = 0,
    n_params: int = 2,
    **store_kwargs,
) -> Fixture:
    rng = np.random.default_rng(seed)
    v = shape[0]
    variables = [astrobio.Variable(f"var{i}", "K", (-1000.0, 1000.0)) for i in range(v)]
    params = [astrobio.Variable(f"p{i}", "1", (-50.0, 50.0)) for i in range(n_params)]
    runs, prm = {}, {}
    for i, t in enumerate(run_lengths):
        # per-variable offsets and scales so normalization is visible
        base = rng.normal(0.0, 1.0, (t, *shape)) * (1.0 + np.arange(v))[:, None, None, None] * 3.0
        runs[f"run-{i}"] = (base + 10.0 * np.arange(v)[:, None, None, None]).astype(np.float32)
        prm[f"run-{i}"] = rng.uniform(-5, 5, (t, n_params)).astype(np.float32)
    ids = list(runs)
    split = {"train": ids[:-1], "test": ids[-1:]} if len(ids) > 1 else None
    astrobio.write_store(
        path, [(k, runs[k], prm[k]) for k in ids], variables=variables, params=params, split=split,
        provenance={"source": "test fixture", "kind": "generated"}, **store_kwargs,
    )
    return Fixture(path, runs, prm, variables)


def shard_file(fx: Fixture, shard: int) -> Path:
    """The object of shard `shard` of a sharded fixture store (`shard_samples=`)."""
    return Path(fx.path) / "cubes" / "c" / str(shard) / "0" / "0" / "0" / "0"


@pytest.fixture
def store(tmp_path: Path) -> Fixture:
    return build_fixture(tmp_path / "fixture.zarr")


def reference_batch(fx: Fixture, indices, mode: str = "per_variable") -> np.ndarray:
    """Plain numpy reference: normalize each sample with the manifest's statistics, then stack."""
    m = astrobio.open_store(fx.path).manifest["normalization"]["cubes"]
    x = fx.cubes[np.asarray(indices)]
    if mode == "none":
        return x
    if mode == "per_variable":
        mean = np.asarray(m["per_variable"]["mean"])[:, None, None, None]
        std = np.asarray(m["per_variable"]["std"])[:, None, None, None]
    else:
        mean = np.asarray(m["per_level"]["mean"])[:, :, None, None]
        std = np.asarray(m["per_level"]["std"])[:, :, None, None]
    # Documented rule: a constant field (std 0) is centred, not scaled.
    scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0).astype(np.float32)
    return np.stack([(s - mean.astype(np.float32)) * scale for s in x])


@pytest.fixture(scope="session")
def climate_slice(tmp_path_factory):
    """5 real planets of the default climate store (3 train, 1 val, 1 test)."""
    from train_fixtures import real_climate_slice

    work = tmp_path_factory.mktemp("climate-slice")
    return real_climate_slice(work / "slice.zarr", work)


@pytest.fixture(scope="session")
def ecoli_graphs(tmp_path_factory):
    """A graph store with the real e_coli_core network."""
    from train_fixtures import ecoli_core_graphs

    return ecoli_core_graphs(tmp_path_factory.mktemp("graphs") / "metabolic.zarr")


@pytest.fixture(scope="session")
def ijo_graphs(tmp_path_factory):
    """A graph store with the real iJO1366 network (the one with reaction subsystems)."""
    return ingest_metabolic({"iJO1366": package_file("cobra", "data/iJO1366.xml.gz")},
                            tmp_path_factory.mktemp("ijo") / "metabolic.zarr")


@pytest.fixture(scope="session")
def source_file():
    """Factory: `source_file(package, relative)` is the path of a real source file shipped in a
    data package, found the way the default dataset finds it; the test is skipped (with the
    install command) when the package is unavailable."""

    def find(package: str, relative: str) -> Path:
        try:
            return package_file(package, relative)
        except (DependencyError, DataNotFoundError) as e:
            pytest.skip(str(e))

    return find


_PG_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pg-test-cluster.sh"


def pytest_configure(config: pytest.Config) -> None:
    """The registry tests run on SQLite and on a real PostgreSQL: when no server is named by
    ASTROBIO_TEST_POSTGRES_URL, start a throwaway cluster (Debian's postgresql package, as the
    `postgres` user) for this session and stop it at the end. Without PostgreSQL installed the
    PostgreSQL cases skip, naming the package."""
    if os.environ.get("ASTROBIO_TEST_POSTGRES_URL") or not _PG_SCRIPT.is_file():
        return
    env = {**os.environ, "ASTROBIO_PG_DIR": str(Path(os.environ.get("TMPDIR", "/tmp")) / f"astrobio-pg-{os.getpid()}")}
    done = subprocess.run(["bash", str(_PG_SCRIPT), "start"], capture_output=True, text=True, env=env)
    if done.returncode == 0 and "ASTROBIO_TEST_POSTGRES_URL=" in done.stdout:
        os.environ["ASTROBIO_TEST_POSTGRES_URL"] = done.stdout.strip().split("=", 1)[1]
        config._astrobio_pg_env = env  # type: ignore[attr-defined]
    else:
        os.environ["ASTROBIO_PG_UNAVAILABLE"] = (done.stderr.strip().splitlines() or ["cannot start PostgreSQL"])[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    env = getattr(config, "_astrobio_pg_env", None)
    if env is not None:
            subprocess.run(["bash", str(_PG_SCRIPT), "stop"], capture_output=True, env=env)
