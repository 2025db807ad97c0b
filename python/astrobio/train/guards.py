"""Guards that stop a run with one clear error instead of training on bad data, corrupting the
weights or hanging:

- `preflight(store)`: the full integrity scan (every chunk's checksum, size, NaN/Inf and range;
  stray files) and the digest check, before anything trains. The read path checks the chunks it
  reads, but validation and test samples are read only later, and a manifest copied from another
  store of the same shape reads without error: only the digest shows it.
- `check_finite(...)`: a non-finite training loss or validation metric stops the run on every
  rank together (it is never counted as an improvement, and no checkpoint is written from it).
- `GradientGuard`: a non-finite or exploding gradient norm stops the run before the optimizer
  step, so the weights, and every checkpoint after, never hold the result.
- `loader_failures(...)`: a DataLoader worker that died (killed, out of memory), hung past
  `data.timeout` or raised becomes one line naming what happened and how to resume.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from ..errors import AstrobioError, IntegrityError
from ..stores.cube import Store

__all__ = ["DataLoaderError", "ExplodingGradientError", "GradientGuard", "NonFiniteLossError", "check_finite",
           "loader_failures", "preflight"]


class NonFiniteLossError(AstrobioError, FloatingPointError):
    """The training loss or a validation metric became NaN/Inf; the run stops (it is never
    counted as an improvement, and no checkpoint is written from that state)."""


class DataLoaderError(AstrobioError, RuntimeError):
    """A DataLoader worker died or hung; the run stopped (its last checkpoint is kept)."""


class ExplodingGradientError(AstrobioError, FloatingPointError):
    """The gradient norm became non-finite or exceeded `optim.grad_norm_limit`; the run stopped
    before the optimizer step, so no checkpoint holds the result."""


def preflight(store: Store) -> None:
    """Refuse a store that fails the full scan or whose data no longer matches its digests."""
    report = store.verify()
    if not report["ok"]:
        first = report["failures"][0]
        raise IntegrityError(
            f"{first['reason']} (integrity scan before training: {report['chunks_failed']} bad chunks, "
            f"{report['unexpected_files']} stray files; list them with `astrobio validate --store {store.path}`)",
            run=first.get("run"), sample=first.get("sample"), chunk=first.get("chunk"), path=str(store.path))
    store.verify_digest()  # after the scan, whose failures are more precise


def check_finite(module: Any, value: torch.Tensor, what: str, batch_idx: int | None = None) -> torch.Tensor:
    """`value` averaged over ranks; raises NonFiniteLossError on every rank together (one
    all-reduce carries both, so no rank is left waiting in a collective). `module`: the running
    LightningModule."""
    v = value.detach().float().reshape(())
    stats = torch.stack([v, (~torch.isfinite(v)).float()])
    world = module.trainer.world_size
    if world > 1:
        stats = module.trainer.strategy.reduce(stats, reduce_op="sum")
    if float(stats[1]) > 0:
        where = f"epoch {module.current_epoch + 1}, optimizer step {module.global_step}"
        if batch_idx is not None:
            where += f", batch {batch_idx}"
        raise NonFiniteLossError(
            f"non-finite {what} ({float(v)} on rank {module.global_rank}) at {where}; training stopped "
            "(check the learning rate, precision and data; resume from the last checkpoint with --resume)")
    return stats[0] / world


class GradientGuard(Callback):
    """Checks the global gradient norm before each optimizer step (after AMP unscaling, before
    clipping). With fp16 AMP a non-finite norm is the gradient scaler's business (it skips the
    step and lowers the scale), so only `limit` applies there."""

    def __init__(self, limit: float, *, scaler_handles_non_finite: bool = False) -> None:
        self.limit = limit
        self.scaler_handles_non_finite = scaler_handles_non_finite

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        grads = [p.grad.detach() for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        # DDP has already averaged the gradients: every rank sees the same norm and stops together
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))
        where = f"epoch {trainer.current_epoch + 1}, optimizer step {trainer.global_step}"
        if not math.isfinite(norm):
            if self.scaler_handles_non_finite:
                return
            raise ExplodingGradientError(
                f"non-finite gradient norm ({norm}) at {where}; training stopped before the optimizer step "
                "(check the learning rate, precision and data; resume from the last checkpoint with --resume)")
        if self.limit and norm > self.limit:
            raise ExplodingGradientError(
                f"exploding gradients: norm {norm:.3g} above optim.grad_norm_limit {self.limit:g} at {where}; "
                "training stopped before the optimizer step (lower optim.lr or raise the limit; "
                "resume from the last checkpoint with --resume)")


_WORKER_WRAPPED = re.compile(r"Caught \w+ in DataLoader worker process (\d+)")


def _raised_in_loader(e: BaseException) -> bool:
    """Whether `e` was raised while the DataLoader or torch's multiprocessing received a batch."""
    tb = e.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "torch/utils/data/" in name or "torch/multiprocessing/" in name or name.endswith("multiprocessing/resource_sharer.py"):
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def loader_failures(trainer: Any, run_dir: Path) -> Iterator[None]:
    """Translate DataLoader worker failures raised inside `trainer.fit` into one-line errors."""
    try:
        yield
    except AstrobioError as e:
        text = str(e)
        m = _WORKER_WRAPPED.search(text)
        if m is None:
            raise
        # torch re-raises a worker's exception as the same type with the whole traceback as its
        # message; keep the original message (its last line) and say which worker
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        original = last.split(": ", 1)[1] if re.match(r"^[\w.]+: ", last) else last
        try:
            err = type(e)(f"{original} (in DataLoader worker {m.group(1)})")
        except Exception:  # a subclass with another constructor
            err = AstrobioError(f"{type(e).__name__}: {original} (in DataLoader worker {m.group(1)})")
        raise err from None
    except (ConnectionError, EOFError) as e:
        # a worker killed while its finished batch waits in the queue: the batch's shared memory
        # is handed over by the worker itself, so unpickling it fails with the socket's error
        if not _raised_in_loader(e):
            raise
        where = f"epoch {trainer.current_epoch + 1}, optimizer step {trainer.global_step}"
        raise DataLoaderError(f"a DataLoader worker died while handing over a batch ({type(e).__name__}: {e}) at {where}; "
                              f"the run stopped (the last checkpoint is kept: continue with --resume {run_dir})") from None
    except RuntimeError as e:
        text = " ".join(str(e).split())
        if "DataLoader worker" not in text and "DataLoader timed out" not in text:
            raise
        where = f"epoch {trainer.current_epoch + 1}, optimizer step {trainer.global_step}"
        hint = "raise data.timeout if batches are legitimately slow; " if "timed out" in text else ""
        raise DataLoaderError(f"{text.rstrip('.')} at {where}; the run stopped ({hint}the last checkpoint is kept: "
                              f"continue with --resume {run_dir})") from None
