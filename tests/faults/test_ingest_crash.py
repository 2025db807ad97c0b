"""An ingest killed mid-way leaves the previous store intact and usable: SIGKILL while a store
is rewritten in place (at random delays while its arrays are written, just before and just
after the finished build is moved into place). After every kill the store at the path opens,
passes the full scan and the digest check, holds exactly the previous data or exactly the new
data (never a mix), and trains; a rerun of the ingest then completes.

The half-written build itself (the hidden `.NAME.tmp-*` sibling) is refused when opened: see
"half-written store" in test_store_faults.py.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import astrobio

from . import _crash_child
from ._util import tiny_config

SEED = int(os.environ.get("ASTROBIO_FAULT_SEED", "20261123"))
PLANETS = 6  # a bigger rewrite than the template, so random kills land in it


@pytest.fixture(scope="module")
def ctx():
    c = multiprocessing.get_context("forkserver")
    c.set_forkserver_preload(["torch", "lightning", "astrobio.train.trainer", "faults._crash_child"])
    return c


def ingest(ctx, path: Path, seed: int, phase: str | None, kill_after: float | None = None) -> tuple[int, float]:
    """Run the ingest child; returns (exit code, seconds from its start signal to its end)."""
    ready = path.parent / f"ready-{time.monotonic_ns()}"
    p = ctx.Process(target=_crash_child.ingest_child, args=(str(path), seed, PLANETS, phase, str(ready)))
    p.start()
    while not ready.exists() and p.is_alive():
        time.sleep(0.005)
    t0 = time.monotonic()
    if kill_after is not None:
        p.join(kill_after)
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
    p.join(120)
    assert not p.is_alive(), "ingest child hung"
    return p.exitcode, time.monotonic() - t0


def identity(path: Path) -> str:
    store = astrobio.open_store(path)
    report = store.verify()
    assert report["ok"], report
    store.verify_digest()
    return store.manifest["content_digest"]


def test_ingest_killed_mid_way_leaves_the_previous_store_usable(ctx, tmp_path):
    path = tmp_path / "climate.zarr"
    # the previous store, and the digest the rewrite produces when it completes
    assert ingest(ctx, path, 1, None)[0] == 0
    old = identity(path)
    old_cubes = astrobio.CubeReader(path, normalize="none").read([0, 50]).cubes
    reference = tmp_path / "reference.zarr"
    code, duration = ingest(ctx, reference, 2, None)
    assert code == 0
    new = identity(reference)
    assert new != old

    rng = random.Random(SEED)
    points: list[tuple[str | None, float | None]] = [("before-swap", None), ("after-swap", None)]
    points += [(None, round(rng.uniform(0.0, 0.7 * duration), 3)) for _ in range(4)]  # inside the rewrite even when it runs faster
    outcomes = []
    for phase, delay in points:
        if identity(path) == new:  # start each kill from the previous store
            assert ingest(ctx, path, 1, None)[0] == 0
        code, _ = ingest(ctx, path, 2, phase, kill_after=delay)
        now = identity(path)  # opens, full scan clean, digests match
        where = f"kill {phase or delay} (seed {SEED})"
        assert code in (-signal.SIGKILL, 0), where
        if phase == "before-swap":
            assert code == -signal.SIGKILL and now == old, where
        if phase == "after-swap":
            assert code == -signal.SIGKILL and now == new, where
        assert now in (old, new), where  # all of one or all of the other, never a mix
        if now == old:
            np.testing.assert_array_equal(astrobio.CubeReader(path, normalize="none").read([0, 50]).cubes, old_cubes)
        outcomes.append((phase or delay, code, "old" if now == old else "new"))
        # beside it only hidden directories are left: a build without its manifest (not a store),
        # the finished build killed before its swap, or the previous store on its way to deletion
        for left in path.parent.glob(f".{path.name}.*"):
            try:
                assert astrobio.open_store(left).manifest["content_digest"] in (old, new), where
            except astrobio.DataNotFoundError:
                pass
    assert sum(code == -signal.SIGKILL for _, code, _ in outcomes) >= 4, outcomes
    # the store that survived trains, and the interrupted ingest can simply be run again
    from astrobio.train import train

    assert train(tiny_config(path, tmp_path / "run", max_epochs=1)).last_checkpoint is not None
    assert ingest(ctx, path, 2, None)[0] == 0 and identity(path) == new
    print(f"ingest crash test: {outcomes}")
