"""An ingest killed mid-way leaves the previous store intact and usable: SIGKILL while a store
is rewritten in place (from outside, once its build holds k cube chunks, and from inside, just
before and just after the finished build is moved into place). After every kill the store at the
path opens, passes the full scan and the digest check, holds exactly the previous data or exactly
the new data (never a mix), and trains; a rerun of the ingest then completes.

Every kill point is found from the ingest's own progress, never from a delay: the parent counts
the chunk files in the child's build (the hidden `.NAME.tmp-<pid>-*` sibling, named by the
child's pid) and kills when k are there. A kill is proven by the child's exit code; one that came
too late (the child had already finished: only a stalled parent can see that) is tried again at an
earlier chunk, so every planned kill lands on any machine, loaded or not.

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
PLANETS = 6  # a bigger rewrite than the template: 72 cube chunks (12 months a planet), one file each
CHUNKS = PLANETS * 12


@pytest.fixture(scope="module")
def ctx():
    c = multiprocessing.get_context("forkserver")
    c.set_forkserver_preload(["torch", "lightning", "astrobio.train.trainer", "faults._crash_child"])
    return c


def ingest(ctx, path: Path, seed: int, phase: str | None, kill_at_chunk: int | None = None) -> tuple[int, int]:
    """Run the ingest child; with `kill_at_chunk` k, SIGKILL it from outside as soon as its
    build holds k cube chunk files. Returns (exit code, chunk files its build held when it ended
    or was killed)."""
    others = set(path.parent.glob(f".{path.name}.tmp-*"))  # builds of killed children: never this one's
    p = ctx.Process(target=_crash_child.ingest_child, args=(str(path), seed, PLANETS, phase))
    p.start()
    seen = 0
    deadline = time.monotonic() + 120
    while kill_at_chunk is not None and p.exitcode is None and time.monotonic() < deadline:
        seen = built_chunks(path, p.pid, others)
        if seen >= kill_at_chunk:
            os.kill(p.pid, signal.SIGKILL)  # not yet reaped (exitcode None): the pid is still this child's
            break
        time.sleep(0.002)
    p.join(120)
    assert not p.is_alive(), "ingest child hung"
    return p.exitcode, seen


def built_chunks(path: Path, pid: int, others: set[Path]) -> int:
    """Cube chunk files in the build of ingest process `pid` (astrobio._fsutil.temp_sibling names
    it `.NAME.tmp-<pid>-<uuid>`); a file counts as soon as it is created."""
    builds = [b for b in path.parent.glob(f".{path.name}.tmp-{pid}-*") if b not in others]
    return sum(1 for b in builds for _ in b.glob("cubes/c/*/0/0/0/0"))


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
    assert ingest(ctx, reference, 2, None)[0] == 0
    new = identity(reference)
    assert new != old

    rng = random.Random(SEED)
    points: list[tuple[str | None, int | None]] = [("before-swap", None), ("after-swap", None)]
    points += [(None, rng.randint(1, CHUNKS - 12)) for _ in range(4)]  # at least 12 chunk writes still to come
    outcomes = []
    for phase, chunk in points:
        for _try in range(4):
            if identity(path) == new:  # start each kill from the previous store
                assert ingest(ctx, path, 1, None)[0] == 0
            code, seen = ingest(ctx, path, 2, phase, kill_at_chunk=chunk)
            now = identity(path)  # opens, full scan clean, digests match
            where = f"kill {phase or f'at chunk {chunk}'} (seed {SEED}, {seen} chunks seen)"
            assert code in (-signal.SIGKILL, 0), where
            assert now in (old, new), where  # all of one or all of the other, never a mix, landed or not
            if code == -signal.SIGKILL:
                break
            # the child finished before the kill was sent: the parent stalled through its whole
            # rest (a loaded machine); try the point again earlier in the build
            assert phase is None and now == new, where
            chunk = max(1, chunk // 2)
        assert code == -signal.SIGKILL, f"{where}: the kill never landed in 4 tries"
        if phase == "before-swap":
            assert now == old, where
        if phase == "after-swap":
            assert now == new, where
        if now == old:
            np.testing.assert_array_equal(astrobio.CubeReader(path, normalize="none").read([0, 50]).cubes, old_cubes)
        outcomes.append((phase or f"chunk {chunk}", seen, "old" if now == old else "new"))
        # beside it only hidden directories are left: a build without its manifest (not a store),
        # the finished build killed before its swap, or the previous store on its way to deletion
        for left in path.parent.glob(f".{path.name}.*"):
            try:
                assert astrobio.open_store(left).manifest["content_digest"] in (old, new), where
            except astrobio.DataNotFoundError:
                pass
    # the store that survived trains, and the interrupted ingest can simply be run again
    from astrobio.train import train

    assert train(tiny_config(path, tmp_path / "run", max_epochs=1)).last_checkpoint is not None
    assert ingest(ctx, path, 2, None)[0] == 0 and identity(path) == new
    print(f"ingest crash test: {outcomes}")
