"""Resource and energy accounting: every key present, numbers plausible, counters that cannot be
read are None with the reason, and the sampling thread stops."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from astrobio.train import resources
from astrobio.train.resources import ResourceMonitor, batch_samples, format_block, mlflow_metrics

KEYS = {"wall_s", "cpu_s", "cpu_process_s", "cpu_children_s", "peak_rss_mb", "peak_rss_scope", "train_samples",
        "train_samples_per_s", "gpu_name", "gpu_peak_memory_mb", "gpu_utilization_mean_pct", "gpu_energy_j",
        "cpu_energy_j", "unavailable"}


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = torch.randn(200, 200)
    while time.perf_counter() < end:
        x = torch.tanh(x @ x)


def test_context_manager_measures_plausible_numbers_and_stops_its_thread():
    before = set(threading.enumerate())
    with ResourceMonitor(sample_period_s=0.05) as m:
        sampler = [t for t in threading.enumerate() if t.name == "astrobio-resources" and t not in before]
        assert len(sampler) == 1 and sampler[0].is_alive()
        _busy(0.3)
        block = [bytearray(64 * 2**20)]  # 64 MiB touched: the peak RSS sees it
        block[0][:: 4096] = b"x" * len(block[0][:: 4096])
    r = m.report()
    assert KEYS <= set(r)
    assert r["wall_s"] >= 0.3 and r["cpu_s"] > 0
    assert r["cpu_s"] <= r["wall_s"] * (os.cpu_count() or 1) * 1.1 + 0.05
    assert r["peak_rss_mb"] >= 64
    # the sampler joined (checked by name: other tests' threads may end meanwhile, so a global count is flaky)
    assert not sampler[0].is_alive()
    assert m.stop() is r  # idempotent, frozen


def test_unavailable_counters_say_why():
    with ResourceMonitor() as m:
        pass
    r = m.report()
    why = r["unavailable"]
    for key in ("gpu_energy_j", "cpu_energy_j", "train_samples_per_s"):
        if r[key] is None:
            assert why[key] and why[key] != "not available", key
    if not torch.cuda.is_available():
        assert r["gpu_name"] is None and "no NVIDIA GPU" in why["gpu_name"]
    text = format_block(r)
    assert "wall time" in text and "not available (" in text


def test_rapl_reads_energy_with_wrap_around(tmp_path, monkeypatch):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (tmp_path / "intel-rapl:0:0").mkdir()  # a subdomain: counted within its package, not twice
    (zone / "max_energy_range_uj").write_text("1000000\n")
    (zone / "energy_uj").write_text("900000\n")
    monkeypatch.setattr(resources, "POWERCAP", tmp_path)
    rapl = resources._Rapl()
    assert rapl.reason is None and len(rapl.domains) == 1
    (zone / "energy_uj").write_text("100000\n")  # wrapped: 0.1 J to the top, 0.1 J after
    rapl.sample()
    assert rapl.energy_j() == pytest.approx(0.2)


def test_rapl_absent_or_unreadable_is_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "POWERCAP", tmp_path / "missing")
    assert "not present" in resources._Rapl().reason
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "max_energy_range_uj").write_text("1000\n")
    (zone / "energy_uj").mkdir()  # reading it fails like a root-only counter does
    monkeypatch.setattr(resources, "POWERCAP", tmp_path)
    rapl = resources._Rapl()
    assert rapl.energy_j() is None and "not readable" in rapl.reason


def test_batch_samples_counts_tensors_tuples_dicts_and_graphs():
    class Graphs:
        num_graphs = 3

    assert batch_samples(torch.zeros(5, 2)) == 5
    assert batch_samples((torch.zeros(4, 9), torch.zeros(4, 2))) == 4
    assert batch_samples({"input_ids": torch.zeros(7, 3)}) == 7
    assert batch_samples(Graphs()) == 3


def test_callback_counts_training_samples_in_a_real_run(tmp_path):
    from train_fixtures import build_climate_fixture

    from astrobio.train.config import TrainConfig
    from astrobio.train.trainer import train

    store = build_climate_fixture(tmp_path / "c.zarr", planets=4, split=(2, 1, 1))
    cfg = TrainConfig()
    cfg.data.store, cfg.data.batch_size = str(store), 8
    cfg.model.channels, cfg.model.hidden = [16, 8], 16
    t = cfg.trainer
    t.output_dir, t.max_epochs, t.progress_bar, t.logger, t.plots = str(tmp_path / "run"), 2, False, "none", False
    monitor = ResourceMonitor()
    train(cfg, callbacks=[monitor])
    r = monitor.report()
    assert r["train_samples"] == 2 * 24  # 2 train planets x 12 months, 2 epochs
    assert r["train_samples_per_s"] > 0 and r["wall_s"] > 0
    metrics = mlflow_metrics(r)
    assert metrics["resources/wall_s"] == r["wall_s"] and all(isinstance(v, float) for v in metrics.values())
    assert not any(k.endswith("gpu_name") or k.endswith("unavailable") for k in metrics)


def test_nested_monitors_leave_the_outer_peak_rss_alone():
    with ResourceMonitor() as outer:
        with ResourceMonitor() as inner:
            pass
    assert inner.report()["peak_rss_scope"] == "enclosing run"
    assert outer.report()["peak_rss_scope"] in ("run", "process lifetime")
    with ResourceMonitor() as again:  # the counter went back to zero
        pass
    assert again.report()["peak_rss_scope"] == outer.report()["peak_rss_scope"]
