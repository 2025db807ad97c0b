"""What a run cost: wall time, CPU time, peak memory, throughput and energy, measured, never guessed.

`ResourceMonitor` is a context manager and a Lightning callback. As a callback it counts the
training samples it sees (for samples per second) and, when nobody started it, measures the fit
alone; wrapped around a whole run (`with ResourceMonitor() as m:` and `callbacks=[m]`) it
measures the run. `m.report()` is a plain dict for `summary.json` (`resources`), `format_block`
prints it, `mlflow_metrics` flattens it for MLflow.

Counters that cannot be read are None in the report, with the reason in `unavailable` (e.g. "no
NVIDIA GPU", "/sys/class/powercap not present"), never a made-up number. Energy counters (NVML,
RAPL) measure the whole device or CPU package, other processes included: `scope` says so.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from ..errors import first_line

__all__ = ["ResourceMonitor", "format_block", "mlflow_metrics", "batch_samples"]

POWERCAP = Path("/sys/class/powercap")
SAMPLE_PERIOD_S = 1.0  # NVML utilisation and RAPL wrap-around sampling


def batch_samples(batch: Any) -> int:
    """Samples in one batch: a PyG batch's graphs, else the leading size of its first tensor."""
    graphs = getattr(batch, "num_graphs", None)
    if isinstance(graphs, int):
        return graphs
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, Mapping):
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for item in batch:
            n = batch_samples(item)
            if n:
                return n
    return 0


class _Rapl:
    """CPU package energy from the Linux powercap RAPL counters (microjoules, wrapping at
    max_energy_range_uj). Sampled periodically so a counter that wraps within the run is counted."""

    def __init__(self) -> None:
        self.domains: list[tuple[Path, int]] = []
        self.reason: str | None = None
        if not POWERCAP.is_dir():
            self.reason = f"{POWERCAP} not present (no RAPL driver, or not Linux)"
            return
        try:
            zones = sorted(p for p in POWERCAP.iterdir() if p.name.startswith("intel-rapl:") and p.name.count(":") == 1)
        except OSError as e:
            self.reason = f"{POWERCAP} not readable: {first_line(e)}"
            return
        if not zones:
            self.reason = f"no RAPL package domains under {POWERCAP}"
            return
        try:
            for z in zones:
                self.domains.append((z / "energy_uj", int((z / "max_energy_range_uj").read_text())))
            self.last = [self._read(p) for p, _ in self.domains]
        except (OSError, ValueError) as e:  # energy_uj is root-only on most kernels since 2020 (CVE-2020-8694)
            self.domains, self.reason = [], f"{POWERCAP} counters not readable: {first_line(e)}"
            return
        self.total_uj = 0

    @staticmethod
    def _read(path: Path) -> int:
        return int(path.read_text())

    def sample(self) -> None:
        if not self.domains:
            return
        now = [self._read(p) for p, _ in self.domains]
        for (_, wrap), before, after in zip(self.domains, self.last, now):
            self.total_uj += after - before if after >= before else after + wrap - before
        self.last = now

    def energy_j(self) -> float | None:
        return self.total_uj / 1e6 if self.domains else None


class _Nvml:
    """The CUDA device's name, energy (nvmlDeviceGetTotalEnergyConsumption, mJ) and utilisation."""

    def __init__(self, device: int) -> None:
        self.handle: Any = None
        self.reason: str | None = None
        self.energy_reason: str | None = None
        self.util: list[float] = []
        try:
            import pynvml
        except ImportError:
            self.reason = 'nvidia-ml-py not installed (pip install "astrobio[tune]")'
            return
        self.nvml = pynvml
        try:
            pynvml.nvmlInit()
            uuid = str(torch.cuda.get_device_properties(device).uuid)
            self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        except Exception as e:  # NVMLError subclasses, or a torch without device uuids
            self.reason = f"NVML unavailable: {first_line(e)}"
            return
        try:
            self.energy0: int | None = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except Exception as e:  # NotSupported before Volta
            self.energy0, self.energy_reason = None, f"NVML energy counter unavailable: {first_line(e)}"

    def sample(self) -> None:
        if self.handle is not None:
            try:
                self.util.append(float(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu))
            except Exception:  # a transient NVML error loses one sample, not the run
                pass

    def energy_j(self) -> float | None:
        if self.handle is None or self.energy0 is None:
            return None
        return (self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.energy0) / 1e3

    def close(self) -> None:
        if self.handle is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass


def _vm_hwm_kib() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


#: monitors running in this process: only the outermost resets the (process-wide) peak-RSS mark
_active = 0


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0), so the peak is this run's."""
    if _active:
        return False
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class ResourceMonitor(Callback):
    """Measures a run; see the module docstring. Not thread-safe; one per run (per rank)."""

    def __init__(self, sample_period_s: float = SAMPLE_PERIOD_S) -> None:
        self.period = sample_period_s
        self.samples = 0
        self.started: float | None = None
        self._result: dict[str, Any] | None = None
        self._owned_by_fit = False
        self._fit_span: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> "ResourceMonitor":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._result, self.samples, self._fit_span = None, 0, []
        self._stop.clear()
        self.cuda = torch.cuda.is_available()
        self.device = torch.cuda.current_device() if self.cuda else None
        global _active
        self.rss_scope = "run" if _reset_peak_rss() else ("enclosing run" if _active else "process lifetime")
        _active += 1
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.nvml = _Nvml(self.device) if self.device is not None else None
        self.rapl = _Rapl()
        self.times0 = os.times()
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._sample_loop, name="astrobio-resources", daemon=True)
        self._thread.start()

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.period):
            self._sample()

    def _sample(self) -> None:
        if self.nvml is not None:
            self.nvml.sample()
        try:
            self.rapl.sample()
        except (OSError, ValueError):
            pass

    def stop(self) -> dict[str, Any]:
        """Stop sampling (joins the thread) and freeze the report; idempotent."""
        if self._result is not None or self.started is None:
            return self.report()
        global _active
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        _active -= 1
        self._sample()
        self._result = self._build()
        if self.nvml is not None:
            self.nvml.close()
        return self._result

    # -- Lightning hooks --------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.started is None or self._result is not None:
            self._owned_by_fit = True
            self.start()
        self._fit_span = [time.perf_counter()]

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.samples += batch_samples(batch)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self._fit_span:
            self._fit_span.append(time.perf_counter())
        if self._owned_by_fit:
            self.stop()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self._owned_by_fit:
            self.stop()

    # -- the report -------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The frozen report after stop(); while running, a snapshot so far."""
        if self._result is not None:
            return self._result
        if self.started is None:
            raise RuntimeError("ResourceMonitor was never started")
        return self._build()

    def _build(self) -> dict[str, Any]:
        assert self.started is not None
        wall = time.perf_counter() - self.started
        t0, t1 = self.times0, os.times()
        own = (t1.user - t0.user) + (t1.system - t0.system)
        children = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
        hwm = _vm_hwm_kib()
        peak_kib = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fit = self._fit_span[-1] - self._fit_span[0] if len(self._fit_span) == 2 else (
            time.perf_counter() - self._fit_span[0] if self._fit_span else wall)
        unavailable: dict[str, str] = {}
        r: dict[str, Any] = {
            "wall_s": wall, "cpu_s": own + children, "cpu_process_s": own, "cpu_children_s": children,
            "cpu_count": os.cpu_count(), "peak_rss_mb": peak_kib / 1024, "peak_rss_scope": self.rss_scope,
            "train_samples": self.samples,
            "train_samples_per_s": self.samples / fit if self.samples and fit > 0 else None,
        }
        if not self.samples:
            unavailable["train_samples_per_s"] = "no training batches were seen"
        gpu_keys = ("gpu_name", "gpu_peak_memory_mb", "gpu_utilization_mean_pct", "gpu_energy_j")
        if not self.cuda:
            r.update(dict.fromkeys(gpu_keys))
            unavailable.update(dict.fromkeys(gpu_keys, "no NVIDIA GPU: torch.cuda.is_available() is False"))
        else:
            assert self.nvml is not None
            r["gpu_name"] = torch.cuda.get_device_name(self.device)
            r["gpu_peak_memory_mb"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            u = self.nvml.util
            r["gpu_utilization_mean_pct"] = sum(u) / len(u) if u else None
            if not u:
                unavailable["gpu_utilization_mean_pct"] = self.nvml.reason or f"no NVML sample (the run took under {self.period:g} s)"
            r["gpu_energy_j"] = self.nvml.energy_j() if self.nvml.reason is None else None
            if r["gpu_energy_j"] is None:
                unavailable["gpu_energy_j"] = self.nvml.reason or self.nvml.energy_reason or "not available"
            r["gpu_energy_scope"] = "whole device (all processes on it)"
        r["cpu_energy_j"] = self.rapl.energy_j()
        if r["cpu_energy_j"] is None:
            unavailable["cpu_energy_j"] = self.rapl.reason or "not available"
        else:
            r["cpu_energy_scope"] = f"CPU package(s), whole machine ({len(self.rapl.domains)} RAPL domain(s))"
        r["unavailable"] = unavailable
        return r


def _num(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


#: (report key, printed label, unit)
_ROWS = [("wall_s", "wall time", "s"), ("cpu_s", "CPU time (process + children)", "s"),
         ("peak_rss_mb", "peak RSS", "MiB"), ("train_samples_per_s", "training samples/s", ""),
         ("gpu_name", "GPU", ""), ("gpu_peak_memory_mb", "GPU peak memory", "MiB"),
         ("gpu_utilization_mean_pct", "GPU mean utilisation", "%"), ("gpu_energy_j", "GPU energy", "J"),
         ("cpu_energy_j", "CPU energy (RAPL)", "J")]


def format_block(report: Mapping[str, Any]) -> str:
    """A few printable lines: each counter, or 'not available (why)'."""
    why = report.get("unavailable", {})
    width = max(len(label) for _, label, _ in _ROWS)
    lines = ["resources"]
    for key, label, unit in _ROWS:
        if key not in report:
            continue
        v = report[key]
        if v is None and key.startswith("gpu_") and key != "gpu_name" and report.get("gpu_name") is None \
                and why.get(key) == why.get("gpu_name"):
            continue  # said once on the GPU line
        if v is None:
            text = f"not available ({why.get(key, 'unknown reason')})"
        elif isinstance(v, str):
            text = v
        else:
            text = f"{_num(float(v))} {unit}".rstrip()
            if key == "peak_rss_mb" and report.get("peak_rss_scope") != "run":
                text += f" ({report.get('peak_rss_scope')})"
        lines.append(f"  {label:<{width}}  {text}")
    return "\n".join(lines)


def mlflow_metrics(report: Mapping[str, Any], prefix: str = "resources/") -> dict[str, float]:
    """The numeric, available counters as MLflow metrics (`resources/wall_s`, ...)."""
    return {f"{prefix}{k}": float(v) for k, v in report.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None and math.isfinite(float(v))}
