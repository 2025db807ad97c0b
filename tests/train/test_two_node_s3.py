"""Two-node training on loopback: two torchrun launchers (`--nnodes 2 --node_rank 0|1`, one
process each, gloo on CPU, static rendezvous on 127.0.0.1) train `python -m astrobio.train` on
the SAME s3:// cube store served by a real local S3 server, each rank reading its own shard; rank
0 writes the checkpoints. Node 0 is killed right after its first epoch checkpoint; the pair
`--resume`s from it and continues exactly: the same step losses and the same final weights as
an uninterrupted two-node run (examples/two_node_s3.sh is the same launch, by hand)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from astrobio.stores import _remote
from astrobio.train import load_checkpoint
from s3_fixtures import S3, free_port, s3, s3_session  # noqa: F401  (fixtures)
from train_fixtures import build_climate_fixture

EPOCHS = 3
TIMEOUT = 240.0
DIES_AFTER = Path(__file__).with_name("_node_dies_after.py")


def _node_command(rank: int, port: int, url: str, out: Path, resume: Path | None, entry: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
           "--master_addr", "127.0.0.1", "--master_port", str(port),
           *entry, "--num-nodes", "2", "--devices", "1", "--accelerator", "cpu", "--store", url,
           "--output-dir", str(out), "--max-epochs", str(EPOCHS), "--batch-size", "8",
           "--set", "model.options.channels=[8, 8]", "--set", "model.options.hidden=16",
           "--set", "trainer.checkpoint_every_n_epochs=1", "--set", "trainer.patience=100",
           "--set", "trainer.progress_bar=false", "--set", "trainer.logger=none", "--set", "trainer.plots=false"]
    return cmd + (["--resume", str(resume)] if resume is not None else [])


def _start_pair(url: str, out: Path, logs: Path, resume: Path | None = None,
                die_after: str | None = None) -> list[subprocess.Popen]:
    """Both nodes' launchers, each in its own process group (so a kill takes its worker too).
    The S3 endpoint and credentials reach the ranks through the environment only. `die_after`:
    rank 0 dies right after writing that checkpoint."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    entry = ["-m", "astrobio.train"]
    if die_after is not None:
        env["ASTROBIO_TEST_DIE_AFTER"] = die_after
        entry = [str(DIES_AFTER)]
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for rank in (0, 1):
        with open(logs / f"node{rank}.log", "ab") as log:
            procs.append(subprocess.Popen(_node_command(rank, port, url, out, resume, entry), stdout=log, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True))
    return procs


def _wait(procs: list[subprocess.Popen], logs: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        _kill(procs)
    tails = "\n".join(f"--- {f.name}\n{f.read_text()[-2500:]}" for f in sorted(logs.glob("node*.log")))
    assert [p.returncode for p in procs] == [0, 0], tails


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.mark.slow
def test_two_nodes_on_loopback_train_from_one_s3_store_and_resume_exactly(s3: S3, tmp_path: Path) -> None:
    local = build_climate_fixture(tmp_path / "s.zarr", planets=6, split=(4, 1, 1))
    url = s3.url("stores/two-node/climate.zarr")
    _remote.upload(Path(local), url)

    whole = tmp_path / "whole"
    _wait(_start_pair(url, whole, tmp_path / "logs-whole"), tmp_path / "logs-whole")

    # The same run, losing node 0 (SIGKILL) right after its first epoch checkpoint; node 1 is
    # killed once node 0's launcher has gone. Then both resume from that checkpoint.
    crashed = tmp_path / "crashed"
    first = crashed / "checkpoints" / "epoch-0001.ckpt"
    pair = _start_pair(url, crashed, tmp_path / "logs-crashed", die_after=first.name)
    try:
        assert pair[0].wait(timeout=TIMEOUT) != 0
    finally:
        _kill(pair)
    assert first.is_file() and not (crashed / "checkpoints" / "epoch-0002.ckpt").exists()
    assert not (crashed / "summary.json").exists()
    before = hashlib.sha256(first.read_bytes()).hexdigest()
    _wait(_start_pair(url, crashed, tmp_path / "logs-resumed", resume=first), tmp_path / "logs-resumed")
    assert hashlib.sha256(first.read_bytes()).hexdigest() == before  # resumed after epoch 1, not rerun from scratch

    summary = json.loads((crashed / "summary.json").read_text())
    assert summary["store"] == url and summary["devices"] == 1 and summary["config"]["trainer"]["num_nodes"] == 2
    assert s3.secret not in json.dumps(summary)
    a, b = load_checkpoint(whole / "checkpoints" / "last.ckpt"), load_checkpoint(crashed / "checkpoints" / "last.ckpt")
    loader = b["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader["num_replicas"] == 2 and loader["rank"] == 0  # written by rank 0 of two
    steps = a["astrobio"]["history"]["steps"]
    # 48 train samples in 6 batches of 8 per epoch: each rank took its own 3
    assert len(steps) == 3 * EPOCHS
    assert b["astrobio"]["history"]["steps"] == steps  # [epoch, batch, step, loss], bit for bit
    assert b["astrobio"]["history"]["epochs"] == a["astrobio"]["history"]["epochs"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
