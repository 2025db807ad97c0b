"""DataLoader workers that raise, die or hang mid-run: the run stops with one clear line (never
a hang, never a traceback as the message), and the last checkpoint before the fault is kept
and loads."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import lightning as L
import pytest
from torch.utils.data import get_worker_info

import astrobio
from astrobio.data import CubeBatchDataset
from astrobio.train import DataLoaderError, TrainConfig, load_checkpoint, train

from ._util import chunk_file, fresh_copy, tiny_config


def loader_config(store: Path, out: Path, **data: object) -> TrainConfig:
    cfg = tiny_config(store, out, max_epochs=3)
    cfg.data.num_workers = 1
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


class AtEpochEnd(L.Callback):
    """Runs `action` at the end of training epoch 1 (after its checkpoint)."""

    def __init__(self, action) -> None:
        self.action = action

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 0:
            self.action()


def _workers() -> list[int]:
    """This process's DataLoader workers: forked children running our own command line."""
    me = os.getpid()
    own = Path(f"/proc/{me}/cmdline").read_bytes()
    pids = []
    for task in Path(f"/proc/{me}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == own:
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


class KillWorker(L.Callback):
    """SIGKILLs the DataLoader worker after training batch `at` of epoch 2."""

    def __init__(self, at: int) -> None:
        self.at, self.killed, self.before = at, [], set()

    def on_fit_start(self, trainer, pl_module) -> None:
        # workers of an earlier test's loader may still be exiting: never this run's to kill
        self.before = set(_workers())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == self.at and not self.killed:
            for pid in sorted(set(_workers()) - self.before):
                os.kill(pid, 9)
                self.killed.append(pid)
            assert self.killed, "no DataLoader worker found"
            time.sleep(0.2)  # let the SIGCHLD arrive


def _epoch_one_checkpoint_kept(out: Path) -> None:
    last = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert len(last["astrobio"]["history"]["epochs"]) == 1 and last["global_step"] == 6


def test_a_worker_that_raises_stops_the_run_with_its_error(template, tmp_path):
    """A chunk lost from storage after the run started: the worker's IntegrityError reaches the
    user as itself, one line, naming the chunk and the worker."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    out = tmp_path / "run"
    with pytest.raises(astrobio.IntegrityError) as info:
        train(loader_config(store, out), callbacks=[AtEpochEnd(lambda: chunk_file(store, 3).unlink())])
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    assert msg.endswith("run 'planet-00', sample 3, chunk 'cubes/c/3/0/0/0/0': chunk missing (in DataLoader worker 0)"), msg
    _epoch_one_checkpoint_kept(out)


def test_a_killed_worker_stops_the_run_without_hanging(template, tmp_path):
    store = fresh_copy(template, tmp_path / "climate.zarr")
    out = tmp_path / "run"
    kill = KillWorker(at=1)
    with pytest.raises(DataLoaderError) as info:
        train(loader_config(store, out), callbacks=[kill])
    msg = str(info.value)
    # torch names the worker either from its SIGCHLD handler or from its status check
    m = re.match(r"DataLoader worker \(pid(?:\(s\))? (\d+)\) (is killed by signal: Killed|exited unexpectedly)", msg)
    assert m and int(m.group(1)) in kill.killed, msg
    assert "at epoch 2" in msg and f"continue with --resume {out}" in msg and "\n" not in msg
    _epoch_one_checkpoint_kept(out)


def test_a_hung_worker_times_out(template, tmp_path, monkeypatch):
    """A worker stuck in I/O (here: sleeping from epoch 2 on) stops the run after data.timeout
    seconds instead of hanging it forever."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    flag = tmp_path / "hang"
    getitem = CubeBatchDataset.__getitem__

    def stuck(self, indices):
        if get_worker_info() is not None and flag.exists():
            time.sleep(120)
        return getitem(self, indices)

    monkeypatch.setattr(CubeBatchDataset, "__getitem__", stuck)  # workers fork with it
    out = tmp_path / "run"
    start = time.monotonic()
    with pytest.raises(DataLoaderError, match=r"DataLoader timed out after 1(\.0)? seconds at epoch 2, optimizer step 6; "
                                              r"the run stopped \(raise data.timeout if batches are legitimately slow; "
                                              r"the last checkpoint is kept"):
        train(loader_config(store, out, timeout=1.0), callbacks=[AtEpochEnd(flag.touch)])
    assert time.monotonic() - start < 60  # stopped, not hung (the worker sleeps 120 s)
    _epoch_one_checkpoint_kept(out)


def test_the_default_loader_timeout_is_finite():
    assert 0 < TrainConfig().data.timeout <= 3600
