"""Every model's training step through the trainer's own parts (benches/gpu_step.py's model rows).

For one model and batch size: the task opens its data and builds its LightningModule exactly as
`python -m astrobio.train` does (`Task.open`, `Task.build`, `resolve_hardware`: bf16 autocast on a
GPU that has it), then a Lightning Trainer runs `steps` training steps (no validation, checkpoints
or logger) with two callbacks:

- `StepTimer`: the GPU is synchronized at the end of each step. `loader_share` is the time spent
  in the train loader's `next()` (reading and collating the batch) over the whole step time;
  `between_steps_share` the whole gap from one step's end to the next one's start (the loader,
  Lightning's copy of the batch to the device and its loop). The first `warmup` steps are left out.
- `astrobio.train.resources.ResourceMonitor` (sampling every 0.1 s): mean GPU utilization from
  NVML and the device's energy over the timed steps, scaled to one epoch of this batch size.

A model whose task is not registered (the detector, until it exists) gives a row that says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from astrobio.train.config import TrainConfig
from astrobio.train.resolve import apply_overrides
from astrobio.train.history import RunHistory
from astrobio.train.resources import ResourceMonitor, batch_samples
from astrobio.train.tasks import BuildContext, get_task, task_names
from astrobio.train.trainer import resolve_hardware

__all__ = ["MODELS", "StepTimer", "fill_batch", "model_row"]

#: (row name, task, config overrides). The large datacube has ~40x the default's convolution
#: work per sample, so the GPU, not the launch overhead, sets its step time.
MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("datacube", "datacube", {}),
    ("datacube-large", "datacube", {"model": {"options": {"hidden": 512, "channels": [256, 192, 128, 64],
                                                          "skip_channels": 32}}}),
    ("multimodal", "multimodal", {}),
    ("graph", "graph", {}),
    ("detector", "detector", {}),  # the observations issue's model: measured once its task is registered
    ("language", "language", {}),
]


class StepTimer(Callback):
    """Splits each training step into the wait for its batch and the rest (see the module docstring)."""

    def __init__(self, warmup: int, on_timed_start: Callable[[], None] | None = None) -> None:
        if warmup < 1:
            raise ValueError("at least one warm-up step: a timed step starts where the previous one ended")
        self.warmup = warmup
        self.on_timed_start = on_timed_start
        self.seen = self.steps = self.samples = 0
        self.wait = self.total = self.fetch = 0.0
        self._end = self._start = 0.0

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        now = time.perf_counter()
        self.seen += 1
        if self.seen > self.warmup:
            self.wait += self._start - self._end
            self.total += now - self._end
            self.steps += 1
            self.samples += batch_samples(batch)
        elif self.seen == self.warmup and self.on_timed_start is not None:
            self.on_timed_start()
        self._end = now


def timed_loader(loader: Any, timer: StepTimer) -> Any:
    """The same loader object, its iterator's `next()` timed into `timer.fetch` once the warm-up is over
    (the loader's own time: reading, collating, a worker's hand-over; not Lightning's copy to the device)."""

    class Timed(loader.__class__):  # type: ignore[misc, name-defined]
        def __iter__(self) -> Any:
            it = super().__iter__()
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                if timer.seen >= timer.warmup:
                    timer.fetch += time.perf_counter() - t0
                yield item

    Timed.__name__ = Timed.__qualname__ = f"Timed{loader.__class__.__name__}"
    loader.__class__ = Timed
    return loader


def _config(task: str, overrides: dict[str, Any], batch: int, extra: dict[str, Any]) -> TrainConfig:
    cfg = TrainConfig.for_model(task)
    cfg = apply_overrides(cfg, overrides)
    cfg = apply_overrides(cfg, extra)
    cfg.data.batch_size = batch
    cfg.trainer.progress_bar = False
    return cfg.validate()


def fill_batch(train_examples: int, default: int, cap: int) -> int:
    """A batch that fills the GPU as far as the data allows: the largest power of two up to the
    training examples (a batch never exceeds one epoch) and `cap`, at least `default`."""
    limit = max(default, min(cap, train_examples))
    return max(default, 1 << (limit.bit_length() - 1))


def model_row(name: str, task_name: str, overrides: dict[str, Any], *, batch: int | None, steps: int, warmup: int,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train `steps` steps of one model at `batch` (None: the task's default) and measure them."""
    if task_name not in task_names():
        return {"model": name, "status": "skipped", "reason": f"no '{task_name}' task is registered yet"}
    default = TrainConfig.for_model(task_name).data.batch_size
    cfg = _config(task_name, overrides, batch or default, extra or {})
    task = get_task(task_name)
    task.open(cfg)
    accelerator, precision, _ = resolve_hardware(cfg)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    built = task.build(cfg, BuildContext(hardware={"accelerator": accelerator, "precision": precision}, history=RunHistory()))
    monitor = ResourceMonitor(sample_period_s=0.1)
    timer = StepTimer(warmup, on_timed_start=monitor.start)
    make_train_loader = built.data.train_dataloader
    built.data.train_dataloader = lambda: timed_loader(make_train_loader(), timer)  # type: ignore[method-assign]
    trainer = L.Trainer(accelerator=accelerator, devices=1, precision=precision, max_steps=steps + warmup,
                        max_epochs=10_000, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False, callbacks=[timer], gradient_clip_val=cfg.optim.grad_clip or None)
    if accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(built.module, datamodule=built.data)
    res = monitor.stop() if monitor.started is not None else {}
    if not timer.steps:
        return {"model": name, "status": "failed", "reason": "no timed step (fewer steps than the warm-up?)"}
    step_s = timer.total / timer.steps
    util = res.get("gpu_utilization_mean_pct")
    energy = res.get("gpu_energy_j")
    n_params = sum(p.numel() for p in built.module.parameters())
    return {"model": name, "status": "ok", "batch": cfg.data.batch_size, "default_batch": default,
            "precision": precision, "parameters": n_params, "batches_per_epoch": built.batches_per_epoch,
            "steps": timer.steps, "samples_per_s": timer.samples / timer.total, "step_ms": 1e3 * step_s,
            "loader_share": timer.fetch / timer.total, "between_steps_share": timer.wait / timer.total,
            "gpu_utilization": None if util is None else util / 100.0,
            "gpu_energy_per_epoch_j": None if energy is None else energy / timer.steps * built.batches_per_epoch,
            "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if accelerator == "gpu" else None,
            "unavailable": res.get("unavailable", {})}
