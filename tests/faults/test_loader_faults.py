"""DataLoader workers that raise, die or hang mid-run: the run stops with one clear line (never
a hang, never a traceback as the message), and the last checkpoint before the fault is kept
and loads."""

from __future__ import annotations

import os
import re
import signal
import threading
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
    cfg.data.timeout = 120  # far above a batch here; a dead worker unnoticed fails in 2 minutes, not 10
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


def _claim(path: Path) -> bool:
    """True for the first process to call it (the validation loader's worker also reads
    batches: only one worker may wait to be killed, or the run waits on the other at shutdown)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


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


def test_a_killed_worker_stops_the_run_without_hanging(template, tmp_path, monkeypatch):
    """The kill point is the worker's own progress: from epoch 2 on, the worker announces (a
    marker file holding its pid) that it is inside its first batch and waits there; a thread of
    the test then SIGKILLs exactly that pid. So no batch of the dead worker is ever queued (a
    queued one would carry a file descriptor that only the live worker can hand over)."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    flag, inside = tmp_path / "kill", tmp_path / "inside"
    getitem = CubeBatchDataset.__getitem__

    def announced(self, indices):
        if get_worker_info() is not None and flag.exists() and _claim(tmp_path / "claimed"):
            inside.write_text(str(os.getpid()))
            time.sleep(600)  # killed long before
        return getitem(self, indices)

    monkeypatch.setattr(CubeBatchDataset, "__getitem__", announced)  # workers fork with it
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 300
        while not (inside.exists() and inside.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        if inside.exists():
            killed.append(int(inside.read_text()))
            os.kill(killed[0], signal.SIGKILL)

    out = tmp_path / "run"
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with pytest.raises(DataLoaderError) as info:
        train(loader_config(store, out), callbacks=[AtEpochEnd(flag.touch)])
    thread.join()
    msg = str(info.value)
    # torch names the worker either from its SIGCHLD handler or from its status check
    m = re.match(r"DataLoader worker \(pid(?:\(s\))? (\d+)\) (is killed by signal: Killed|exited unexpectedly)", msg)
    assert m and [int(m.group(1))] == killed, (msg, killed)
    assert "at epoch 2" in msg and f"continue with --resume {out}" in msg and "\n" not in msg
    _epoch_one_checkpoint_kept(out)


class AtEpochTwoStart(L.Callback):
    """Runs `action` before the first batch of epoch 2 is trained on."""

    def __init__(self, action) -> None:
        self.action = action

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 0:
            self.action()


def test_a_worker_killed_with_a_batch_queued_stops_the_run_in_one_line(template, tmp_path, monkeypatch):
    """The worker hands over batches through shared memory that only a live worker can pass on:
    killed while a finished batch waits in the queue, the parent's unpickling of that batch
    fails (a refused or reset connection to the dead worker). The run still stops with
    DataLoaderError. Kill point from progress: in epoch 2 the worker finishes two batches and
    announces itself inside the third; the trainer, waiting before its first batch of epoch 2,
    goes on only after the kill, so the second batch is queued and unread when the worker dies."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    flag, inside = tmp_path / "kill", tmp_path / "inside"
    getitem = CubeBatchDataset.__getitem__
    calls = [0]

    def announced(self, indices):
        if get_worker_info() is not None and flag.exists():
            calls[0] += 1
            if calls[0] == 3 and _claim(tmp_path / "claimed"):
                inside.write_text(str(os.getpid()))
                time.sleep(600)  # killed long before
        return getitem(self, indices)

    monkeypatch.setattr(CubeBatchDataset, "__getitem__", announced)
    killed: list[int] = []

    def kill_when_inside() -> None:
        deadline = time.monotonic() + 300
        while not (inside.exists() and inside.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        killed.append(int(inside.read_text()))
        os.kill(killed[0], signal.SIGKILL)

    out = tmp_path / "run"
    with pytest.raises(DataLoaderError) as info:
        train(loader_config(store, out), callbacks=[AtEpochEnd(flag.touch), AtEpochTwoStart(kill_when_inside)])
    msg = str(info.value)
    assert killed and "at epoch 2" in msg and f"continue with --resume {out}" in msg and "\n" not in msg, msg
    assert "DataLoader worker" in msg, msg
    _epoch_one_checkpoint_kept(out)


def test_a_hung_worker_times_out(template, tmp_path, monkeypatch):
    """A worker stuck in I/O (here: from epoch 2 on, for far longer than the timeout) stops the
    run after data.timeout seconds instead of hanging it forever. The timeout is far above what a
    real batch of this store takes even on a loaded machine (a batch slower than it would be
    taken for the hang); the proof that the run did not wait for the worker is the worker's own:
    it never got to the end of its hang."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    flag, hanging, woke = tmp_path / "hang", tmp_path / "hanging", tmp_path / "woke"
    getitem = CubeBatchDataset.__getitem__

    def stuck(self, indices):
        if get_worker_info() is not None and flag.exists():
            hanging.touch()
            time.sleep(600)
            woke.touch()
        return getitem(self, indices)

    monkeypatch.setattr(CubeBatchDataset, "__getitem__", stuck)  # workers fork with it
    out = tmp_path / "run"
    with pytest.raises(DataLoaderError, match=r"DataLoader timed out after 5(\.0)? seconds at epoch 2, optimizer step 6; "
                                              r"the run stopped \(raise data.timeout if batches are legitimately slow; "
                                              r"the last checkpoint is kept"):
        train(loader_config(store, out, timeout=5.0), callbacks=[AtEpochEnd(flag.touch)])
    assert hanging.exists() and not woke.exists()  # stopped while the worker hung, not after
    _epoch_one_checkpoint_kept(out)


def test_the_default_loader_timeout_is_finite():
    assert 0 < TrainConfig().data.timeout <= 3600


class _Trainer:
    current_epoch, global_step = 1, 6


def _raise_from(filename: str, exc: BaseException) -> None:
    """Raise `exc` from a frame whose code lives in `filename` (as torch's own code would)."""
    namespace: dict[str, object] = {}
    exec(compile("def receive(exc):\n    raise exc\n", filename, "exec"), namespace)
    namespace["receive"](exc)  # type: ignore[operator]


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"),
                                   ConnectionRefusedError(111, "Connection refused"), EOFError()])
def test_a_batch_lost_with_its_worker_is_a_loader_error(tmp_path, error):
    """The other side of the kill race: the parent already unpickling the dead worker's batch
    gets the socket's error from torch's multiprocessing; it becomes DataLoaderError, one line."""
    from astrobio.train.guards import loader_failures

    torch_file = str(Path(__import__("torch").__file__).parent / "multiprocessing" / "reductions.py")
    with pytest.raises(DataLoaderError) as info:
        with loader_failures(_Trainer(), tmp_path):
            _raise_from(torch_file, error)
    msg = str(info.value)
    assert "worker died while handing over a batch" in msg and type(error).__name__ in msg and "\n" not in msg
    assert "at epoch 2, optimizer step 6" in msg and f"--resume {tmp_path}" in msg
    # the same error raised elsewhere (e.g. a user's callback talking to a server) is not the loader's
    with pytest.raises(type(error)):
        with loader_failures(_Trainer(), tmp_path):
            _raise_from(str(tmp_path / "callback.py"), type(error)(*error.args))  # a fresh one: no torch frame


def test_a_second_run_in_the_process_still_notices_a_killed_worker(template, tmp_path):
    """Lightning's teardown puts back the SIGCHLD handler it found before fit, while torch
    installs its own only once per process: after one run, a second one (k-fold, tuning,
    evaluation after fit) would wait data.timeout on a dead worker. astrobio re-arms it."""
    store = fresh_copy(template, tmp_path / "climate.zarr")
    cfg = loader_config(store, tmp_path / "first")
    cfg.trainer.max_epochs = 1
    train(cfg)
    assert not callable(signal.getsignal(signal.SIGCHLD))  # Lightning's teardown put back the default
    from astrobio.data import BatchIndexSampler, make_loader

    loader = make_loader(CubeBatchDataset(store), BatchIndexSampler(range(4), 2), num_workers=1)
    next(iter(loader))
    assert callable(signal.getsignal(signal.SIGCHLD))  # torch's handler is back for this loader's workers
