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
