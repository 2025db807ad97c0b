"""Crash safety of checkpoints: the trainer is SIGKILLed during checkpoint writes, many times,
at random points (inside the bytes of the temp file, before its fsync, before the rename, just
after the rename, and at random delays from outside), with a checkpoint written every optimizer
step. After every kill: each checkpoint on disk loads and is byte for byte the last version
whose rename completed (the new one is complete or absent, the previous one always loads); only
hidden temp files are left beside them and nothing loads them. Each kill is followed by
`--resume` (which may itself be killed); the final weights, optimizer state and loss history
equal an uninterrupted run's, bit for bit (CPU, deterministic).

The children fork from a forkserver with torch imported (see _crash_child.py), so each kill
costs about a second. ASTROBIO_FAULT_SEED picks other random points; the default is fixed.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
import torch

import astrobio
from astrobio.train import load_checkpoint
from astrobio.train.trainer import resolve_checkpoint

from . import _crash_child
from ._util import fresh_copy

SEED = int(os.environ.get("ASTROBIO_FAULT_SEED", "20261123"))
KILLS = int(os.environ.get("ASTROBIO_FAULT_KILLS", "10"))
EPOCHS = 3  # 6 optimizer steps per epoch, a checkpoint every step: about 24 writes per run
VISIBLE = re.compile(r"^(last|best|epoch-\d{4})\.ckpt$")
TEMP = re.compile(r"^\.(last|best|epoch-\d{4})\.ckpt\.tmp-.+$")  # astrobio._fsutil.temp_sibling


@pytest.fixture(scope="module")
def ctx():
    c = multiprocessing.get_context("forkserver")
    c.set_forkserver_preload(["torch", "lightning", "astrobio.train.trainer", "faults._crash_child"])
    return c


def run_child(ctx, *args, kill_after: float | None = None, timeout: float = 120.0) -> int:
    """Start a training child; with `kill_after`, SIGKILL it that many seconds after its first
    checkpoint rename (so the kill lands while it trains and writes). Returns its exit code
    (-9 when killed)."""
    log = Path(args[4])
    before = len(renamed_lines(log))
    p = ctx.Process(target=_crash_child.train_child, args=args)
    p.start()
    if kill_after is not None:
        deadline = time.monotonic() + timeout
        while p.is_alive() and len(renamed_lines(log)) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(kill_after)
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
    p.join(timeout)
    if p.is_alive():  # a hang is a failure, not a wait
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        pytest.fail(f"training child hung ({args})")
    return p.exitcode


def renamed_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.is_file() else []


def renamed(log: Path) -> dict[str, str]:
    """name -> sha256 of the last version whose rename completed."""
    last: dict[str, str] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            name, digest = line.split("\t")
            last[name] = digest
    return last


def check_after_kill(run: Path, log: Path, where: str) -> None:
    ckpts = run / "checkpoints"
    names = sorted(os.listdir(ckpts)) if ckpts.is_dir() else []
    visible = [n for n in names if not n.startswith(".")]
    assert all(VISIBLE.match(n) for n in visible), (where, names)
    assert all(TEMP.match(n) for n in names if n.startswith(".")), (where, names)
    expected = renamed(log)
    assert sorted(expected) == visible, (where, expected, visible)  # absent unless its rename completed
    import hashlib

    for name in visible:
        # exactly the last complete version: never torn, never a temp file's content
        assert hashlib.sha256((ckpts / name).read_bytes()).hexdigest() == expected[name], (where, name)
        state = load_checkpoint(ckpts / name)
        assert all(torch.isfinite(v).all() for v in state["state_dict"].values())
    # --resume RUN picks last.ckpt or nothing: a temp file of the killed writer is never taken for a checkpoint
    if "last.ckpt" in visible:
        assert resolve_checkpoint(run) == ckpts / "last.ckpt"
    else:
        with pytest.raises(astrobio.DataNotFoundError, match="no checkpoint to resume from"):
            resolve_checkpoint(run)


def kill_plan(rng: random.Random, n: int) -> list[dict | float]:
    """n kill points: a dict (die inside checkpoint write k at a phase) or a float (SIGKILL from
    outside after that many seconds)."""
    plan: list[dict | float] = []
    phases = ["write", "write", "fsync", "rename", "after-rename"]
    for i in range(n):
        if i % 5 == 4:
            plan.append(round(rng.uniform(0.0, 0.5), 3))
        else:
            plan.append({"write": rng.randint(1, 4), "phase": rng.choice(phases), "fraction": round(rng.random(), 3)})
    return plan


def test_sigkill_during_checkpoint_writes_then_resume_is_exact(ctx, template, tmp_path):
    store = fresh_copy(template, tmp_path / "climate.zarr")
    whole = tmp_path / "whole"
    assert run_child(ctx, str(store), str(whole), False, None, str(tmp_path / "whole.log"), EPOCHS) == 0

    rng = random.Random(SEED)
    chains = 0  # a chain of kills and resumes ends when a run finishes; then a fresh chain starts

    def chain() -> tuple[Path, Path]:
        return tmp_path / f"crashed-{chains}", tmp_path / f"crashed-{chains}.log"

    crashed, log = chain()
    killed, landed = 0, []
    for i, point in enumerate(kill_plan(rng, KILLS)):
        for _fresh in range(2):
            resume = (crashed / "checkpoints" / "last.ckpt").is_file()
            if isinstance(point, dict):
                code = run_child(ctx, str(store), str(crashed), resume, point, str(log), EPOCHS)
            else:
                code = run_child(ctx, str(store), str(crashed), resume, None, str(log), EPOCHS, kill_after=point)
            if code != 0:
                break
            # the run finished before this point was reached (how far each kill gets depends on
            # the machine's speed): that chain is complete and must equal the uninterrupted run;
            # the point is tried again on a fresh chain
            check_after_kill(crashed, log, f"chain {chains} finished")
            assert_same_run(whole, crashed)
            chains += 1
            crashed, log = chain()
        where = f"kill {i} at {point} (seed {SEED}), resume={resume}"
        if code == 0:  # a delay longer than a whole fresh run on this machine: nothing to kill
            continue
        assert code == -signal.SIGKILL, where
        killed += 1
        landed.append(point)
        check_after_kill(crashed, log, where)
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} kills landed (seed {SEED})"

    # resume to the end; a finished run needs no resume and is compared as is
    if not (crashed / "summary.json").is_file():
        resume = (crashed / "checkpoints" / "last.ckpt").is_file()  # a fresh chain may hold nothing yet
        assert run_child(ctx, str(store), str(crashed), resume, None, str(log), EPOCHS) == 0
    check_after_kill(crashed, log, "after the final resume")
    assert_same_run(whole, crashed)
    print(f"checkpoint crash test: {killed} kills in {chains + 1} chains (seed {SEED}): {landed}")


def assert_same_run(whole: Path, crashed: Path) -> None:
    """The crashed-and-resumed run equals the uninterrupted one bit for bit, and left no temp files."""
    a = load_checkpoint(whole / "checkpoints" / "last.ckpt")
    b = load_checkpoint(crashed / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 6 * EPOCHS
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]), "weights differ"
    assert a["astrobio"]["history"] == b["astrobio"]["history"]  # every step's loss, bit for bit
    sa, sb = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    # the resumed run cleaned up the temp files its killed predecessors left
    assert not [n for n in os.listdir(crashed / "checkpoints") if n.startswith(".")]


def test_a_run_killed_before_its_first_checkpoint_starts_again(ctx, template, tmp_path):
    """Killed in the first write: nothing visible is left; --resume has nothing to resume (one
    clear error), and a fresh start in the same folder is allowed."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    run, log = tmp_path / "run", tmp_path / "run.log"
    code = run_child(ctx, str(store), str(run), False, {"write": 1, "phase": "write", "fraction": 0.5}, str(log), 1)
    assert code == -signal.SIGKILL
    names = os.listdir(run / "checkpoints")
    assert len(names) == 1 and TEMP.match(names[0])  # only the torn temp file
    from astrobio.train.cli import main

    assert main(["--resume", str(run)]) == 2
    assert run_child(ctx, str(store), str(run), False, None, str(log), 1) == 0
    assert sorted(os.listdir(run / "checkpoints")) == ["best.ckpt", "last.ckpt"]


def test_killed_between_the_last_batch_and_the_epoch_end_checkpoint(ctx, template, tmp_path):
    """Regression (found by this matrix): a step checkpoint written after the epoch's last batch,
    before validation, resumed into the epoch end without the validation metric and every
    resume failed in early stopping. Killed at the epoch-end best.ckpt write, the run now resumes
    from the last mid-epoch checkpoint and ends bit for bit like an uninterrupted one."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    whole, crashed, log = tmp_path / "whole", tmp_path / "crashed", tmp_path / "crashed.log"
    assert run_child(ctx, str(store), str(whole), False, None, str(tmp_path / "whole.log"), 2) == 0
    kill = {"write": 1, "phase": "rename", "fraction": 0.0, "name": "best.ckpt"}
    assert run_child(ctx, str(store), str(crashed), False, kill, str(log), 2) == -signal.SIGKILL
    check_after_kill(crashed, log, "at the first best.ckpt rename")
    resumed_from = load_checkpoint(crashed / "checkpoints" / "last.ckpt")["global_step"]
    assert run_child(ctx, str(store), str(crashed), True, None, str(log), 2) == 0  # exit 1 before the fix
    assert resumed_from == 5  # the last mid-epoch step: no step checkpoint after the epoch's last batch
    a = load_checkpoint(whole / "checkpoints" / "last.ckpt")
    b = load_checkpoint(crashed / "checkpoints" / "last.ckpt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["astrobio"]["history"] == b["astrobio"]["history"]
