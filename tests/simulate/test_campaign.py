"""The designed climate campaign: the design, the run order, resumability and the settling rule
(without running the GCM: the run of one planet is replaced by a stand-in that records it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from astrobio.errors import ConfigError
from astrobio.simulate import campaign
from astrobio.simulate.planets import G_EARTH, OTEGI_EXP, OTEGI_R0, PlanetSpec


def test_the_design_is_a_reproducible_latin_hypercube_within_its_ranges():
    specs = campaign.design_specs()
    again = campaign.design_specs()
    assert [s.to_dict() for s in specs] == [s.to_dict() for s in again]
    for regime, count in campaign.N_DESIGN.items():
        members = [s for s in specs if s.synchronous == (regime == "synchronous")]
        assert len(members) == count
        for key, (lo, hi, how) in campaign.DESIGN_RANGES[regime].items():
            values = np.array([getattr(s, key) for s in members])
            assert values.min() >= lo - 1e-3 and values.max() <= hi + 1e-3, key
            # Latin hypercube: the i-th smallest value lies in the i-th of `count` equal strata of
            # every dimension (to the specs' rounding)
            unit = (np.log(values / lo) / math.log(hi / lo)) if how == "log" else (values - lo) / (hi - lo)
            position = np.sort(unit) * count
            assert np.all(position >= np.arange(count) - 1e-3) and np.all(position <= np.arange(count) + 1 + 1e-3), key
    for s in specs:  # gravity from the rocky mass-radius relation
        mass = (s.radius_earth / OTEGI_R0) ** (1 / OTEGI_EXP)
        assert s.gravity_ms2 == pytest.approx(G_EARTH * mass / s.radius_earth**2, rel=1e-3)
        assert s.aquaplanet and s.eccentricity == 0 and s.obliquity_deg == 0
    assert campaign.design_specs(seed=1)[0].to_dict() != specs[0].to_dict()


def test_the_campaign_alternates_regimes_and_has_equal_numbers(monkeypatch):
    catalogue = [PlanetSpec(name=f"cat {i}", source="t", source_row=None, star_teff_k=3000.0, instellation_earth=0.5,
                            radius_earth=1.0, gravity_ms2=9.8, rotation_period_days=10.0 if i < 3 else 1.0,
                            synchronous=i < 3) for i in range(4)]
    monkeypatch.setattr(campaign, "catalogue_planet_specs", lambda table=None: catalogue)
    monkeypatch.setattr(campaign, "N_DESIGN", {"synchronous": 2, "fast": 4})
    order = campaign.campaign_specs()
    regimes = [s.synchronous for s in order]
    assert sum(regimes) == 5 and len(order) == 10
    assert regimes == [True, False] * 5  # a campaign stopped part-way covers both regimes equally
    assert all("1 m mixed-layer" in s.notes["surface"] for s in order)


def test_settle_drift_is_the_last_two_months_minus_the_two_before():
    assert campaign.settle_drift([250, 250, 250, 250, 249, 248, 247, 246]) == pytest.approx(-2.0)
    assert campaign.settle_drift(np.full(12, 260.0)) == 0.0
    with pytest.raises(ConfigError, match="at least 4"):
        campaign.settle_drift([1.0, 2.0, 3.0])


def _stand_in(spec: PlanetSpec, out: str) -> dict:
    """Replaces one GCM run (the pool forks, so the children see this patch)."""
    run_dir = Path(out) / spec.slug
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.name == "crashes":
        (run_dir / "failed.json").write_text(json.dumps({"attempts": [{"error": "RuntimeError: crashed"}]}))
        return {"run": spec.slug, "ok": False, "error": "RuntimeError: crashed", "wall_s": 0.0}
    (run_dir / "result.json").write_text("{}")
    return {"run": spec.slug, "ok": True, "drift": 0.1, "wall_s": 0.0}


def _spec(name: str) -> PlanetSpec:
    return PlanetSpec(name=name, source="t", source_row=None, star_teff_k=3000.0, instellation_earth=0.5,
                      radius_earth=1.0, gravity_ms2=9.8, rotation_period_days=1.0, synchronous=False)


def test_a_campaign_continues_where_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "_run_one", _stand_in)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "result.json").write_text("{}")  # finished before the campaign was killed
    specs = [_spec("done"), _spec("new-a"), _spec("new-b"), _spec("crashes")]
    lines: list[str] = []
    status = campaign.run_campaign(specs, tmp_path, jobs=2, echo=lines.append)
    assert status == {"done": "kept", "new-a": "done", "new-b": "done", "crashes": "failed"}
    assert lines[0].startswith("campaign: 4 runs, 1 already finished, 3 to run")
    record = json.loads((tmp_path / "campaign.json").read_text())
    assert [r["name"] for r in record["runs"]] == ["done", "new-a", "new-b", "crashes"]
    assert record["settled_drift_K"] == campaign.SETTLED_DRIFT_K and record["max_years"] == campaign.MAX_YEARS
    # a second invocation runs nothing: finished and recorded failures are kept
    again = campaign.run_campaign(specs, tmp_path, jobs=2, echo=lines.append)
    assert set(again.values()) == {"kept"}
    # --force reruns every one (the failure record is cleared first)
    forced = campaign.run_campaign(specs, tmp_path, jobs=1, force=True, echo=lines.append)
    assert forced["done"] == "done" and forced["crashes"] == "failed"


def _write_run(out: Path, spec: PlanetSpec, drift: float, years: int = 2) -> None:
    run_dir = out / spec.slug
    (run_dir / "work" / "model").mkdir(parents=True)
    files = [str(run_dir / "work" / "model" / f"MOST.{y:05d}.nc") for y in range(years)]
    prov = {"planet": spec.to_dict(), "output_files": files, "years_simulated": years, "configure": {"timestep": 30.0},
            "wall_time_s": 100.0,
            "annual_global_mean_ts_K": [250.0 + y for y in range(years)],
            "campaign": {"drift_K_per_60d": drift, "settled": abs(drift) <= campaign.SETTLED_DRIFT_K, "failed_attempts": []}}
    (run_dir / "result.json").write_text(json.dumps({"provenance": prov}))


def test_only_unsettled_runs_are_continued_from_their_last_restart_file(tmp_path, monkeypatch):
    from astrobio.simulate import exoplasim, output

    settled, cold, hot = _spec("settled"), _spec("cold"), _spec("hot")
    _write_run(tmp_path, settled, 0.4)
    _write_run(tmp_path, cold, -3.0)
    _write_run(tmp_path, hot, 1.5, years=3)
    assert [s.slug for s in campaign.unsettled_runs([settled, cold, hot], tmp_path)] == ["cold", "hot"]
    calls: dict[str, dict] = {}

    def fake_run_planet(spec, workdir, years=1, **kw):
        calls[spec.slug] = {"workdir": Path(workdir), "years": years, **kw}
        if spec.slug == "hot":
            raise RuntimeError("model crashed")
        monthly = [240.0, 240.2, 240.1, 240.3]  # settled: drift +0.1
        prov = {"years_simulated": len(kw["prior_annual_ts"]) + 2, "monthly_global_mean_ts_K": monthly, "wall_time_s": 50.0}
        return output.SimulationResult(data=np.zeros((1, 1, 1, 1, 1), np.float32), surface={}, coords={}, units={},
                                       provenance=prov)

    monkeypatch.setattr(exoplasim, "run_planet", fake_run_planet)
    r = campaign._extend_one(cold, str(tmp_path), 2)
    assert r["ok"] and r["drift"] == pytest.approx(0.1)
    c = calls["cold"]
    assert c["workdir"] == tmp_path / "cold" / "work-y3" and c["max_years"] == 2 and c["timestep_min"] == 30.0
    assert c["restart_file"] == tmp_path / "cold" / "work" / "model" / "MOST_REST.00001"
    assert c["prior_annual_ts"] == [250.0, 251.0]
    record = json.loads((tmp_path / "cold" / "result.json").read_text())["provenance"]["campaign"]
    assert record["wall_time_s_total"] == 150.0  # the first segment's and the continuation's
    assert record["settled"] and record["extensions"] == [
        {"from_years": 2, "restart_file": str(c["restart_file"]), "drift_before_K_per_60d": -3.0, "years_added": 2}]
    # a continuation that crashes leaves the earlier result as it was and records why
    before = (tmp_path / "hot" / "result.json").read_text()
    r = campaign._extend_one(hot, str(tmp_path), 1)
    assert not r["ok"] and "model crashed" in r["error"]
    assert (tmp_path / "hot" / "result.json").read_text() == before
    assert "model crashed" in json.loads((tmp_path / "hot" / "extend_failed.json").read_text())["error"]
    assert [s.slug for s in campaign.unsettled_runs([settled, cold, hot], tmp_path)] == ["hot"]
    with pytest.raises(ConfigError, match="years >= 1"):
        campaign.extend_campaign([hot], tmp_path, years=0)


def test_a_continuation_refuses_a_run_of_another_planet(tmp_path):
    spec = _spec("p")
    _write_run(tmp_path, spec, 2.0)
    meta = tmp_path / "p" / "result.json"
    doc = json.loads(meta.read_text())
    doc["provenance"]["planet"]["instellation_earth"] = 0.9
    meta.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="--force"):
        campaign._extend_one(spec, str(tmp_path), 1)


def test_the_cli_continues_only_the_campaigns_runs(tmp_path, monkeypatch, capsys):
    from astrobio.cli import main

    assert main(["simulate", "--extend", "1", "--out", str(tmp_path)]) == 2
    assert "use it with --campaign" in capsys.readouterr().err
    seen: dict = {}
    monkeypatch.setattr(campaign, "extend_campaign", lambda specs, out, years, jobs: seen.update(years=years, jobs=jobs) or {"a": "done"})
    assert main(["simulate", "--campaign", "--extend", "3", "--jobs", "1", "--out", str(tmp_path)]) == 0
    assert seen == {"years": 3, "jobs": 1}
