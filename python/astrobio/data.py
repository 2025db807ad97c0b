"""torch integration: a Dataset whose items are whole batches, so each batch is ONE native
call (decode + verify + normalize + collate in Rust), and a DataLoader built around it.

The DataLoader is used with `batch_size=None`: the sampler yields lists of indices and the
dataset returns ready tensors, so torch's per-sample collation never runs.

In a DataLoader worker the core writes the batch straight into shared memory, so torch hands it
to the main process by file descriptor, without the copy into shared memory its queue would
otherwise make of a private batch (about 42 MB per default batch), and the worker reuses the
buffer once the main process has let go of it (`astrobio._shm`). With `pin_memory` (on by
default when CUDA is present) torch's pin thread then copies it once into page-locked memory,
as for any batch.

Without workers the loader reads one batch ahead while the current one is consumed: an s3://
store fetches the next batch's chunk objects; a local store, when the model runs on a GPU, has
the next batch read on a background thread (the core releases the GIL), straight into
page-locked memory, so the GPU step and the read overlap and torch's pinning copy is skipped;
a sharded s3:// store is read ahead on that thread too (its shards' ranges are fetched together).
The read-ahead keeps up to `depth` batches in flight (a bounded queue on as many background
threads): `depth=None` decides it from the measured read time against the time between the
consumer's requests, so a step shorter than a read still finds its batch ready when the reads
do not saturate the cores (small batches). Results are handed out by batch, so the order and
the errors are those of a plain loop: a batch that failed to read raises when it is asked for.

Core threads (`choose_threads`): a reader that was given no thread count gets the cores this
process may use, split evenly among DataLoader workers (not 1 each: two workers on 16 cores were
2.4x slower than the main process for that reason), one left to the thread that drives the GPU
while the main process reads ahead, and never more than the batch's samples (the core works one
sample per task; idle pool threads would only spin against the training step).
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from ._shm import worker_batch
from .errors import ConfigError
from .reader import CubeReader

__all__ = ["CubeBatchDataset", "BatchIndexSampler", "StatefulLoader", "available_cores", "choose_threads",
           "make_loader"]

#: the most batches the decided (`depth=None`) read-ahead keeps in flight
MAX_AUTO_DEPTH = 4


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity call on this platform
        return max(1, os.cpu_count() or 1)


def choose_threads(batch_size: int, *, workers: int = 0, readahead: bool = False, cores: int | None = None) -> int:
    """Core threads for one reader: the cores (`available_cores()` unless given) split evenly among
    `workers` DataLoader workers, or all but one when the main process reads ahead beside the
    thread that drives the step, and at most `batch_size` (the core decodes one sample per task)."""
    n = cores if cores is not None else available_cores()
    share = n // workers if workers > 0 else (n - 1 if readahead else n)
    return max(1, min(int(batch_size), share))


class CubeBatchDataset(Dataset):
    """Map-style dataset indexed by a list of sample indices; returns one collated batch:
    {"cubes": [B, V, L, H, W], "params": [B, P], "index": [B]} as torch tensors (zero-copy)."""

    def __init__(self, path: str | Path, normalize: str = "per_variable", threads: int | None = None,
                 dtype: str = "float32") -> None:
        if dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"dtype must be float32 or bfloat16, not {dtype!r}")
        self.reader = CubeReader(path, normalize=normalize, threads=threads)
        self.threads = threads  # as asked; None lets make_loader choose (choose_threads)
        self.dtype = dtype  # bfloat16: the core writes the narrowed batch (half the bytes to move)
        self.pin_ahead = False  # local read-ahead writes into page-locked memory (set by make_loader)
        self.depth: int | None = 1  # batches read ahead (None: decided from the timings; set by make_loader)
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: OrderedDict[tuple[int, ...], Future[dict[str, Any]]] = OrderedDict()
        self._read_s = 0.0  # moving averages: seconds per read ahead, seconds between requests
        self._step_s = 0.0
        self._last_request: float | None = None

    def __len__(self) -> int:
        return len(self.reader)

    def __getstate__(self) -> dict[str, Any]:  # a worker gets the dataset without this process's read-ahead
        state = self.__dict__.copy()
        state["_pool"], state["_ahead"] = None, OrderedDict()
        return state

    def set_threads(self, threads: int) -> None:
        """Use `threads` core threads from the next read (the native reader reopens if it changes)."""
        if threads != self.reader.threads:
            self.reader = CubeReader(self.reader.path, normalize=self.reader.normalize, threads=threads)

    def ahead_depth(self) -> int:
        """Batches to keep in flight: `depth` when set, else the reads' time over the time between
        the consumer's requests (1 until both were measured), at most `MAX_AUTO_DEPTH`."""
        if self.remote and not self.reader.shard_samples:
            return 1  # the core's own object read-ahead holds one batch
        if self.depth is not None:
            return self.depth
        if self._read_s <= 0.0 or self._step_s <= 0.0:
            return 1
        return max(1, min(MAX_AUTO_DEPTH, math.ceil(self._read_s / self._step_s)))

    @property
    def remote(self) -> bool:
        """True for an s3:// store."""
        return isinstance(self.reader.path, str)

    def prefetch(self, indices: Sequence[int]) -> bool:
        """Start reading a later batch in the background: an s3:// store fetches its chunk objects
        (CubeReader.prefetch); a local or sharded store reads the whole batch on a background
        thread, which the next `__getitem__` of the same indices picks up. At most two batches are
        in flight; an error of a read ahead is raised when its batch is asked for."""
        if self.remote and not self.reader.shard_samples:
            return self.reader.prefetch(indices)
        if get_worker_info() is not None:  # workers read ahead through torch's prefetch_factor
            return False
        if self._pool is None:  # one thread per batch in flight: reads of small batches overlap
            self._pool = ThreadPoolExecutor(self.depth or MAX_AUTO_DEPTH, thread_name_prefix="astrobio-readahead")
        key = tuple(int(i) for i in indices)
        if key not in self._ahead:
            self._ahead[key] = self._pool.submit(self._timed_read, key)
            while len(self._ahead) > (self.depth or MAX_AUTO_DEPTH) + 1:  # a batch the sampler skipped: dropped
                self._ahead.popitem(last=False)
        return True

    def _timed_read(self, indices: Sequence[int]) -> dict[str, Any]:
        t0 = time.perf_counter()
        item = self._read_in_process(indices, self.pin_ahead)
        seconds = time.perf_counter() - t0
        self._read_s = seconds if self._read_s == 0.0 else 0.8 * self._read_s + 0.2 * seconds
        return item

    def _read_in_process(self, indices: Sequence[int], pinned: bool = False) -> dict[str, Any]:
        if pinned:  # straight into page-locked memory
            dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
            out = torch.empty((len(indices), *self.reader.sample_shape), dtype=dtype, pin_memory=True)
            return self._read_into(indices, out, out)
        batch = self.reader.read(indices, dtype=self.dtype)  # a private numpy batch, zero-copy into torch
        cubes = torch.from_numpy(batch.cubes)
        return _as_item(cubes.view(torch.bfloat16) if self.dtype == "bfloat16" else cubes, batch)

    def _read_into(self, indices: Sequence[int], out: torch.Tensor, cubes: Any) -> dict[str, Any]:
        """Have the core write the batch into `out` (float32 or bfloat16); `cubes` is what the
        item hands on for it (the tensor itself, or a worker's shared-buffer handle)."""
        target = out.view(torch.int16).numpy().view(np.uint16) if self.dtype == "bfloat16" else out.numpy()
        return _as_item(cubes, self.reader.read(indices, out=target, dtype=self.dtype))

    def __getitem__(self, indices: Sequence[int]) -> dict[str, Any]:
        if get_worker_info() is None:  # main process
            now = time.perf_counter()
            if self._last_request is not None:  # the consumer's step (the read-ahead depth follows it)
                gap = now - self._last_request
                self._step_s = gap if self._step_s == 0.0 else 0.8 * self._step_s + 0.2 * gap
            self._last_request = now
            ahead = self._ahead.pop(tuple(int(i) for i in indices), None) if self._ahead else None
            return ahead.result() if ahead is not None else self._read_in_process(indices)
        # worker: the core writes into a pooled shared buffer, which reaches the main process as
        # a plain tensor, by handle (the Leased wrapper only exists in the worker)
        dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        out, cubes = worker_batch((len(indices), *self.reader.sample_shape), dtype)
        return self._read_into(indices, out, cubes)


def _as_item(cubes: Any, batch: Any) -> dict[str, Any]:
    """A dataset item: the batch's cubes, its normalized parameters and sample indices."""
    return {"cubes": cubes, "params": torch.from_numpy(batch.params), "index": torch.from_numpy(batch.indices)}


class BatchIndexSampler(Sampler[list[int]]):
    """Yields batches (lists) of the given sample indices, shuffled per epoch with a seed.

    `shuffle_block` > 1 shuffles blocks of that many consecutive sample indices (index //
    block), then the samples within each block, so a batch reads few shards of a sharded
    store (one range request per shard instead of one per sample); 1 shuffles samples freely.

    Under DDP each of `num_replicas` ranks takes every `num_replicas`-th batch of the same
    epoch order (rank `rank` first); with `pad` (training) the epoch's batch list is extended
    by wrapping around so every rank gets the same number of batches, like torch's
    DistributedSampler. `state_dict()` / `load_state_dict()` carry (seed, epoch, start) so a
    resumed run continues mid-epoch with the same batches.
    """

    def __init__(self, indices: Sequence[int] | np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, num_replicas: int = 1, rank: int = 0,
                 pad: bool = True, shuffle_block: int = 1) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, not {batch_size}")
        if shuffle_block < 1:
            raise ConfigError(f"shuffle_block must be >= 1, not {shuffle_block}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ConfigError(f"rank {rank} is not within num_replicas {num_replicas}")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.pad = pad
        self.shuffle_block = shuffle_block
        self.epoch = 0
        self.start = 0  # batches of this rank's epoch to skip (set when resuming mid-epoch)
        # Called with each of the next batches as each batch is handed out (read-ahead; set by
        # make_loader when the batches are read in this process), as many as readahead_depth() says.
        self.readahead: Callable[[list[int]], object] | None = None
        self.readahead_depth: Callable[[], int] = lambda: 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _n_global(self) -> int:
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __len__(self) -> int:
        """Batches this rank yields in a whole epoch."""
        n, r = self._n_global(), self.num_replicas
        if r == 1:
            return n
        return -(-n // r) if self.pad else len(range(self.rank, n, r))

    def epoch_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch, in order (ignores `start`)."""
        order = self.indices
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))  # real-data-ok: seeded shuffle of real sample indices
            if self.shuffle_block > 1:
                blocks, member = np.unique(order // self.shuffle_block, return_inverse=True)
                place = np.empty(len(blocks), dtype=np.int64)
                place[rng.permutation(len(blocks))] = np.arange(len(blocks))
                order = order[np.lexsort((rng.random(len(order)), place[member]))]
            else:
                order = order[rng.permutation(len(order))]
        batches = [order[i * self.batch_size : (i + 1) * self.batch_size].tolist() for i in range(self._n_global())]
        if self.num_replicas > 1:
            if self.pad and batches:
                total = len(self) * self.num_replicas
                batches = [batches[i % len(batches)] for i in range(total)]
            batches = batches[self.rank :: self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        start, self.start = self.start, 0  # a skip applies to one pass only
        batches = self.epoch_batches()[start:]
        for i, batch in enumerate(batches):
            if self.readahead is not None:
                for later in batches[i + 1 : i + 1 + self.readahead_depth()]:  # already in flight: no-op
                    self.readahead(later)
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"seed": int(self.seed), "epoch": int(self.epoch), "start": int(self.start)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if int(state["seed"]) != self.seed:
            raise ConfigError(f"sampler state was saved with seed {state['seed']}, this sampler has seed {self.seed}")
        self.epoch = int(state["epoch"])
        self.start = int(state["start"])


def rearm_worker_failure_signal() -> bool:
    """Let torch install its SIGCHLD handler again when it is no longer there; returns whether
    it had to. torch installs it once per process (a flag) and relies on it to notice a worker
    killed by a signal (e.g. the OOM killer) at once; Lightning's teardown after `fit` restores
    the handler it found before the run (the default), so a second run in the same process
    (k-fold, tuning, ensembles, `--mode full`, evaluation after fit) would wait `data.timeout`
    on a dead worker instead. Checked before each multi-worker iterator starts."""
    import signal

    flags = getattr(getattr(torch.utils.data, "_utils", None), "signal_handling", None)
    if flags is None or not getattr(flags, "_SIGCHLD_handler_set", False) or not hasattr(signal, "SIGCHLD"):
        return False
    if callable(signal.getsignal(signal.SIGCHLD)):
        return False
    flags._SIGCHLD_handler_set = False
    return True


class _Loader(DataLoader):
    """DataLoader whose multi-worker iterators find torch's worker-failure signal armed."""

    def _get_iterator(self) -> Any:
        if self.num_workers > 0:
            rearm_worker_failure_signal()
        return super()._get_iterator()


class StatefulLoader(_Loader):
    """A DataLoader over a `BatchIndexSampler` that counts the batches it has handed out, so its
    `state_dict()` says exactly where in the epoch the consumer is (worker prefetch is not
    counted). Lightning saves and restores it with the fit loop (its `_Stateful` protocol)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.sampler, BatchIndexSampler):
            raise ConfigError("StatefulLoader needs a BatchIndexSampler")
        self._consumed = 0
        self._resume: dict[str, int] | None = None

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: the body runs at the first next(), after Lightning's set_epoch().
        sampler: BatchIndexSampler = self.sampler  # type: ignore[assignment]
        skip = 0
        if self._resume is not None and self._resume["epoch"] == sampler.epoch:
            skip = min(self._resume["start"], len(sampler))
        self._resume = None
        sampler.start = skip
        self._consumed = skip
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        sampler: BatchIndexSampler = self.sampler  # type: ignore[assignment]
        return {"seed": int(sampler.seed), "epoch": int(sampler.epoch), "start": int(self._consumed),
                "rank": int(sampler.rank), "num_replicas": int(sampler.num_replicas)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: BatchIndexSampler = self.sampler  # type: ignore[assignment]
        if int(state.get("num_replicas", 1)) != sampler.num_replicas:
            raise ConfigError(f"loader state was saved with {state.get('num_replicas')} ranks; this run has "
                              f"{sampler.num_replicas} (resume with the same number of devices)")
        sampler.load_state_dict({"seed": state["seed"], "epoch": state["epoch"], "start": state["start"]})
        self._resume = {"epoch": int(state["epoch"]), "start": int(state["start"])}


def make_loader(dataset: Dataset, sampler: BatchIndexSampler, *, num_workers: int = 0,
                multiprocessing_context: str | None = None, pin_memory: bool | None = None,
                timeout: float = 0.0, stateful: bool = False, readahead: bool | None = None,
                depth: int | None = None, persistent_workers: bool | None = None, **kwargs: Any) -> DataLoader:
    """A DataLoader that asks the dataset for whole batches. Pinned memory is on by default
    when CUDA is present. `stateful=True` gives a `StatefulLoader` (resumable mid-epoch).

    `readahead` (no workers, a `CubeBatchDataset`): read the next batches while the current one
    is consumed, `depth` of them (None: decided from the read and step times, 1 to
    `MAX_AUTO_DEPTH`). Default: on for s3:// stores, and for local ones when CUDA is present (the
    model then computes on the GPU while the core reads; on a CPU-only machine both would
    share the same cores). With workers, torch's prefetch_factor reads ahead.

    A `CubeBatchDataset` given no thread count gets `choose_threads(batch, workers, readahead)`.
    Workers persist across epochs unless `persistent_workers=False`: restarting them every epoch
    (forking, reopening the store, building the core's pool and the shared buffers again) cost
    more than the epoch's reads on a small store (benches/loader_workers.py)."""
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    if depth is not None and depth < 1:
        raise ConfigError(f"the read-ahead depth must be >= 1, not {depth}")
    if isinstance(dataset, CubeBatchDataset):
        if num_workers == 0 and readahead is None:
            readahead = dataset.remote or torch.cuda.is_available()
        ahead = bool(readahead) and num_workers == 0
        if dataset.threads is None:
            dataset.set_threads(choose_threads(sampler.batch_size, workers=num_workers, readahead=ahead))
        if ahead:
            dataset.depth = depth
            sampler.readahead = dataset.prefetch
            sampler.readahead_depth = dataset.ahead_depth
            dataset.pin_ahead = bool(pin_memory) and torch.cuda.is_available()
    cls = StatefulLoader if stateful else _Loader
    return cls(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers,
        multiprocessing_context=multiprocessing_context if num_workers > 0 else None,
        pin_memory=pin_memory, timeout=timeout if num_workers > 0 else 0.0,
        persistent_workers=num_workers > 0 and persistent_workers is not False, **kwargs,
    )
