"""Batches in shared memory for DataLoader workers: the core writes each batch straight into a
shared-memory buffer that torch hands to the main process by file descriptor (no copy), and the
buffer is reused once the main process has let go of it.

Why reuse: a fresh shared-memory buffer costs more than the copy it avoids. The kernel zeroes
every 4 KiB page of a new tmpfs mapping (no transparent huge pages for shared memory by
default), measured at 15-30 ms for a 42 MB batch on the development VM, against 13 ms for the
core to decode the batch and 3 ms for a private (huge-page) numpy buffer. A worker therefore
keeps a few buffers and a small shared array of flags, one per buffer: 1 while the main process
may hold (or is about to receive) the batch, 0 once every tensor, view or numpy array of it in
the main process is gone. The main process clears the flag from a finalizer on the batch's
storage (torch keeps one Python storage object per storage, so the finalizer runs when the last
reference of any kind goes), and a worker only writes into a buffer whose flag is 0.

A worker that finds every buffer held (the consumer keeps many batches) allocates a fresh,
untracked one: memory then grows exactly as it would without the pool.
"""

from __future__ import annotations

import math
import os
import weakref
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["SLOTS", "Leased", "worker_batch"]

#: Buffers per worker: enough for torch's prefetch (2 per worker by default) plus the batches a
#: training step holds (the current one and the pinned copy being made).
SLOTS = 8


class _Pool:
    """One worker's buffers and their flags (1: held by the main process or in flight)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.flags = torch.zeros(SLOTS, dtype=torch.uint8).share_memory_()
        self.buffers: list[torch.UntypedStorage | None] = [None] * SLOTS

    def take(self, nbytes: int) -> tuple[int | None, torch.UntypedStorage]:
        free = [i for i in range(SLOTS) if self.buffers[i] is None or int(self.flags[i]) == 0]
        for i in free:  # a free buffer of this size first: no allocation at all
            buf = self.buffers[i]
            if buf is not None and buf.nbytes() == nbytes:
                self.flags[i] = 1
                return i, buf
        if free:  # an empty slot, or a free buffer of another size (the epoch's last batch)
            i = free[0]
            self.buffers[i] = None
            self.buffers[i] = torch.UntypedStorage._new_shared(nbytes)
            self.flags[i] = 1
            return i, self.buffers[i]  # type: ignore[return-value]
        return None, torch.UntypedStorage._new_shared(nbytes)


_pool: _Pool | None = None


def worker_batch(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, Leased]:
    """A `dtype` tensor of `shape` in a shared buffer of this worker's pool, and the object to
    return in its place from the dataset: it unpickles in the main process as the tensor itself,
    with the finalizer that frees the buffer."""
    global _pool
    if _pool is None or _pool.pid != os.getpid():  # one pool per process (a forked child starts anew)
        _pool = _Pool()
    slot, storage = _pool.take(math.prod(shape) * dtype.itemsize)
    tensor = torch.empty(0, dtype=dtype).set_(storage).view(tuple(shape))  # a view: same storage
    return tensor, Leased(tensor, _pool.flags, slot)


class Leased:
    """A batch tensor on its way from a worker to the main process (see the module docstring)."""

    def __init__(self, tensor: torch.Tensor, flags: torch.Tensor, slot: int | None) -> None:
        self.tensor, self.flags, self.slot = tensor, flags, slot

    def __reduce__(self) -> tuple[Any, ...]:
        # The tensors pickle through torch's reductions (by file descriptor, no copy).
        return _adopt, (self.tensor, self.flags, self.slot)


def _adopt(tensor: torch.Tensor, flags: torch.Tensor, slot: int | None) -> torch.Tensor:
    """In the main process: the batch tensor, whose buffer is released when its storage dies."""
    if slot is not None:
        weakref.finalize(tensor.untyped_storage(), _release, flags, slot)
    return tensor


def _release(flags: torch.Tensor, slot: int) -> None:
    flags[slot] = 0
