"""The climate campaign: the catalogue planets plus a space-filling design over the parameters
the emulator is asked about, run with one protocol, one run per core, resumable.

Design (fixed seed, so the run list is reproducible): a Latin hypercube per rotation regime over
instellation, rotation period, radius (gravity from the rocky mass-radius relation), surface
pressure and stellar effective temperature, inside the ranges below. Synchronous and
fast-rotating planets come in equal numbers once the catalogue planets (mostly synchronous) are
counted.

Protocol (every run): ExoPlaSim T21, 10 levels, 45-minute step, one 360-day year from a cold
start with a thin (`MLDEPTH_M`) mixed-layer ocean, so the surface settles within months rather
than decades. Drift = global-mean surface temperature of the last two months minus that of the
two before. A run whose |drift| exceeds `SETTLED_DRIFT_K` after its first year runs a second
year (`MAX_YEARS`); a run still above it then has not settled and is excluded from the pack,
unless it is continued from its restart file (`extend_campaign`, ``astrobio simulate --campaign
--extend N``) a year at a time until it settles or N more years are done.
Only the final year is kept, and of it only the last `KEEP_MONTHS` monthly means (the samples);
the months before are spin-up.
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .._fsutil import atomic_write
from ..errors import ConfigError
from .output import save_result
from .planets import G_EARTH, OTEGI_EXP, OTEGI_R0, PlanetSpec, catalogue_planet_specs

__all__ = ["DESIGN_RANGES", "DESIGN_SEED", "N_DESIGN", "MLDEPTH_M", "KEEP_MONTHS", "SETTLED_DRIFT_K", "design_specs",
           "campaign_specs", "settle_drift", "run_campaign", "extend_campaign", "unsettled_runs", "held_out_split", "TEST_CATALOGUE"]

#: Seed of the Latin hypercube (changing it changes the run list).
DESIGN_SEED = 20261129
#: Designed runs per regime: with the 11 synchronous + 1 fast catalogue planets, 24 of each.
N_DESIGN = {"synchronous": 13, "fast": 23}
#: The untouched evaluation campaign (issue: the margin must hold on planets no choice saw): the
#: same protocol and ranges, a Latin hypercube with its own seed, 8 planets per regime. Its runs are
#: packed separately and evaluated once per candidate model, never used for any choice.
UNTOUCHED_SEED = 20261206
N_UNTOUCHED = {"synchronous": 8, "fast": 8}
#: Ranges per regime: (low, high, scale). Log scale samples uniformly in log.
DESIGN_RANGES: dict[str, dict[str, tuple[float, float, str]]] = {
    "synchronous": {"instellation_earth": (0.28, 1.45, "lin"), "rotation_period_days": (3.0, 40.0, "log"),
                    "radius_earth": (0.7, 1.6, "lin"), "surface_pressure_bar": (0.5, 2.0, "log"),
                    "star_teff_k": (2600.0, 4000.0, "lin")},
    "fast": {"instellation_earth": (0.28, 1.45, "lin"), "rotation_period_days": (0.5, 2.0, "log"),
             "radius_earth": (0.7, 1.6, "lin"), "surface_pressure_bar": (0.5, 2.0, "log"),
             "star_teff_k": (2600.0, 6000.0, "lin")},
}
#: Mixed-layer ocean depth of every campaign run, m (ExoPlaSim's default is 50 m).
MLDEPTH_M = 1.0
#: Monthly means kept per run (the last ones of the 360-day year).
KEEP_MONTHS = 4
#: |drift| (K per 60 days, global-mean surface temperature) above which a run has not settled.
SETTLED_DRIFT_K = 1.0
#: Model years at most per run (the second only when the first has not settled).
MAX_YEARS = 2
#: A run that crashes is retried once with this (shorter) timestep, minutes.
RETRY_TIMESTEP_MIN = 30.0


def design_specs(n: dict[str, int] | None = None, seed: int = DESIGN_SEED, prefix: str = "design") -> list[PlanetSpec]:
    """The designed planets: a Latin hypercube per rotation regime (see the module docstring),
    named `<prefix>-s01`, `<prefix>-f01`, ..."""
    from scipy.stats import qmc

    counts = dict(N_DESIGN if n is None else n)
    specs: list[PlanetSpec] = []
    for offset, (regime, ranges) in enumerate(DESIGN_RANGES.items()):
        count = counts.get(regime, 0)
        if count <= 0:
            continue
        unit = qmc.LatinHypercube(d=len(ranges), seed=seed + offset, optimization="random-cd").random(count)
        for i, row in enumerate(unit):
            values = {key: _scale(u, lo, hi, how) for u, (key, (lo, hi, how)) in zip(row, ranges.items())}
            specs.append(_designed_spec(f"{prefix}-{regime[0]}{i + 1:02d}", regime, values, seed))
    return specs


def _scale(u: float, lo: float, hi: float, how: str) -> float:
    if how == "log":
        return float(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))
    return float(lo + u * (hi - lo))


def _designed_spec(name: str, regime: str, v: dict[str, float], seed: int) -> PlanetSpec:
    radius = round(v["radius_earth"], 4)
    mass = (radius / OTEGI_R0) ** (1.0 / OTEGI_EXP)
    notes = {
        "design": f"Latin hypercube point of the {regime} regime (seed {seed}); ranges in astrobio.simulate.campaign",
        "gravity": f"g = 9.80665 M / R^2 with M = (R/{OTEGI_R0})^(1/{OTEGI_EXP}) (Otegi et al. 2020, rocky)",
        "rotation": ("tidally locked: rotation period = orbital period (a design variable, not derived from "
                     "Kepler's law)") if regime == "synchronous" else "fast rotator (design variable)",
        "orbit": "circular orbit, zero obliquity",
        "atmosphere": "N2 with 400 ppmv CO2",
        "surface": f"aquaplanet, {MLDEPTH_M:g} m mixed-layer ocean",
        "spectrum": "blackbody at the stellar effective temperature",
    }
    return PlanetSpec(
        name=name, source="designed (astrobio.simulate.campaign)", source_row=None,
        star_teff_k=round(v["star_teff_k"], 1), instellation_earth=round(v["instellation_earth"], 4),
        radius_earth=radius, gravity_ms2=round(G_EARTH * mass / radius**2, 4),
        rotation_period_days=round(v["rotation_period_days"], 4), synchronous=regime == "synchronous",
        surface_pressure_bar=round(v["surface_pressure_bar"], 4), mass_earth=round(mass, 4),
        orbital_period_days=round(v["rotation_period_days"], 4) if regime == "synchronous" else None,
        notes=notes,
    )


def untouched_specs() -> list[PlanetSpec]:
    """The untouched evaluation campaign (`UNTOUCHED_SEED`, `N_UNTOUCHED`), alternating regimes."""
    every = design_specs(N_UNTOUCHED, seed=UNTOUCHED_SEED, prefix="untouched")
    sync, fast = [s for s in every if s.synchronous], [s for s in every if not s.synchronous]
    return [s for pair in zip(sync, fast) for s in pair]


def campaign_specs(table: str | Path | None = None) -> list[PlanetSpec]:
    """Every run of the campaign in run order: the catalogue selection (same protocol) and the
    design, alternating between the rotation regimes so that a campaign stopped part-way still
    covers both equally."""
    catalogue = [replace(spec, notes={**spec.notes, "surface": f"assumed aquaplanet ({MLDEPTH_M:g} m mixed-layer ocean)"})
                 for spec in catalogue_planet_specs(table=table)]
    every = catalogue + design_specs()
    queues = [[s for s in every if s.synchronous], [s for s in every if not s.synchronous]]
    order: list[PlanetSpec] = []
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    return order


def settle_drift(monthly_ts_k: Sequence[float] | np.ndarray) -> float:
    """Drift, K per 60 days: mean of the last two monthly global means minus the two before."""
    m = np.asarray(monthly_ts_k, float)
    if m.size < 4:
        raise ConfigError(f"drift needs at least 4 monthly means, got {m.size}")
    return float(m[-2:].mean() - m[-4:-2].mean())


def _settled(monthly_ts_k: Sequence[float] | np.ndarray) -> bool:
    return abs(settle_drift(monthly_ts_k)) <= SETTLED_DRIFT_K


def _run_one(spec: PlanetSpec, out: str) -> dict[str, Any]:
    """One campaign run in its own process (ExoPlaSim changes the working directory)."""
    from .exoplasim import run_planet

    # niceness 10 (absolute: a pool worker runs many runs, and os.nice would add up)
    os.setpriority(os.PRIO_PROCESS, 0, max(10, os.getpriority(os.PRIO_PROCESS, 0)))
    run_dir = Path(out) / spec.slug
    started = time.time()
    attempts: list[dict[str, Any]] = []
    for timestep in (None, RETRY_TIMESTEP_MIN):
        try:
            result = run_planet(spec, run_dir / "work", years=1, timestep_min=timestep, mldepth_m=MLDEPTH_M,
                                extend_until=_settled, max_years=MAX_YEARS)
        except Exception as e:  # a crashed model: record it, retry once with a shorter step
            attempts.append({"timestep_min": timestep, "error": f"{type(e).__name__}: {e}"[:500]})
            continue
        drift = settle_drift(result.provenance["monthly_global_mean_ts_K"])
        result.provenance["campaign"] = {"mldepth_m": MLDEPTH_M, "keep_months": KEEP_MONTHS,
                                         "drift_K_per_60d": drift, "settled_threshold_K": SETTLED_DRIFT_K,
                                         "settled": abs(drift) <= SETTLED_DRIFT_K, "failed_attempts": attempts}
        save_result(result, run_dir)
        return {"run": spec.slug, "ok": True, "drift": drift, "wall_s": time.time() - started}
    run_dir.mkdir(parents=True, exist_ok=True)  # a run that failed before ExoPlaSim made its folder
    with atomic_write(run_dir / "failed.json", "w") as f:
        json.dump({"planet": spec.to_dict(), "attempts": attempts, "traceback": traceback.format_exc()[-2000:]}, f, indent=1)
    return {"run": spec.slug, "ok": False, "error": attempts[-1]["error"], "wall_s": time.time() - started}


def _extend_one(spec: PlanetSpec, out: str, years: int) -> dict[str, Any]:
    """Continue an unsettled run from its last restart file, up to `years` more model years."""
    from .exoplasim import run_planet

    os.setpriority(os.PRIO_PROCESS, 0, max(10, os.getpriority(os.PRIO_PROCESS, 0)))
    run_dir = Path(out) / spec.slug
    started = time.time()
    prov = json.loads((run_dir / "result.json").read_text())["provenance"]
    if prov.get("planet") != spec.to_dict():
        raise ConfigError(f"{run_dir}: the recorded planet differs from the campaign's {spec.slug}; rerun it with --force")
    last = Path(prov["output_files"][-1])  # .../MOST.<year>.nc -> .../MOST_REST.<year>
    restart = last.with_name("MOST_REST." + last.name.split(".")[1])
    done = int(prov["years_simulated"])
    previous = prov.get("campaign") or {}
    try:
        result = run_planet(spec, run_dir / f"work-y{done + 1}", years=1, timestep_min=float(prov["configure"]["timestep"]),
                            mldepth_m=MLDEPTH_M, extend_until=_settled, max_years=years, restart_file=restart,
                            prior_annual_ts=prov["annual_global_mean_ts_K"])
    except Exception as e:  # the earlier, unsettled result stays as it was
        error = f"{type(e).__name__}: {e}"[:500]
        with atomic_write(run_dir / "extend_failed.json", "w") as f:
            json.dump({"planet": spec.to_dict(), "from_years": done, "error": error,
                       "traceback": traceback.format_exc()[-2000:]}, f, indent=1)
        return {"run": spec.slug, "ok": False, "error": error, "wall_s": time.time() - started}
    drift = settle_drift(result.provenance["monthly_global_mean_ts_K"])
    wall_before = float(previous.get("wall_time_s_total", prov.get("wall_time_s", 0.0)))
    result.provenance["campaign"] = {**previous, "drift_K_per_60d": drift, "settled": abs(drift) <= SETTLED_DRIFT_K,
                                     "wall_time_s_total": wall_before + float(result.provenance.get("wall_time_s", 0.0)),
                                     "extensions": [*previous.get("extensions", []),
                                                    {"from_years": done, "restart_file": str(restart),
                                                     "drift_before_K_per_60d": previous.get("drift_K_per_60d"),
                                                     "years_added": result.provenance["years_simulated"] - done}]}
    (run_dir / "extend_failed.json").unlink(missing_ok=True)
    save_result(result, run_dir)
    return {"run": spec.slug, "ok": True, "drift": drift, "wall_s": time.time() - started}


def unsettled_runs(specs: Sequence[PlanetSpec], out: str | os.PathLike[str]) -> list[PlanetSpec]:
    """The finished runs under `out` whose recorded drift exceeds `SETTLED_DRIFT_K`."""
    todo = []
    for spec in specs:
        meta = Path(out) / spec.slug / "result.json"
        if meta.exists():
            campaign = json.loads(meta.read_text())["provenance"].get("campaign") or {}
            if "drift_K_per_60d" in campaign and abs(float(campaign["drift_K_per_60d"])) > SETTLED_DRIFT_K:
                todo.append(spec)
    return todo


def _run_pool(fn: Callable[..., dict[str, Any]], specs: Sequence[PlanetSpec], extra: tuple[Any, ...], jobs: int,
              echo: Callable[[str], None]) -> dict[str, str]:
    status: dict[str, str] = {}
    started = time.time()
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending: set[Future[dict[str, Any]]] = {pool.submit(fn, s, *extra) for s in specs}
        done_count = 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                r = fut.result()
                done_count += 1
                status[r["run"]] = "done" if r["ok"] else "failed"
                detail = f"drift {r['drift']:+.2f} K/60d" if r["ok"] else r["error"]
                eta = (time.time() - started) / done_count * len(pending)
                echo(f"[{done_count}/{len(specs)}] {r['run']}: {status[r['run']]} in {r['wall_s']:.0f} s ({detail}); "
                     f"~{eta / 60:.0f} min left")
    return status


def extend_campaign(specs: Sequence[PlanetSpec], out: str | os.PathLike[str], *, years: int = 1, jobs: int = 2,
                    echo: Callable[[str], None] = print) -> dict[str, str]:
    """Continue every unsettled run under `out` from its restart file, a year at a time, until it
    settles or `years` more model years are done (each continuation gets its own ``work-y<N>``
    folder; the result is replaced only when the continuation finishes). Returns {run: status}."""
    if years < 1:
        raise ConfigError(f"--extend takes a number of years >= 1, got {years}")
    todo = unsettled_runs(specs, out)
    echo(f"campaign: {len(todo)} unsettled runs to continue by up to {years} model year(s) on {jobs} processes"
         + (f": {', '.join(s.slug for s in todo)}" if todo else ""))
    return _run_pool(_extend_one, todo, (str(out), years), jobs, echo)


def run_campaign(specs: Sequence[PlanetSpec], out: str | os.PathLike[str], *, jobs: int = 2, force: bool = False,
                 echo: Callable[[str], None] = print) -> dict[str, str]:
    """Run `specs` with `jobs` processes; finished runs (``result.json``) and recorded failures
    (``failed.json``) are kept and skipped, so a killed campaign continues where it stopped.

    Returns {run: "done" | "failed" | "kept"}.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    status: dict[str, str] = {}
    todo = []
    for spec in specs:
        d = out / spec.slug
        if not force and ((d / "result.json").exists() or (d / "failed.json").exists()):
            status[spec.slug] = "kept"
        else:
            (d / "failed.json").unlink(missing_ok=True)
            todo.append(spec)
    echo(f"campaign: {len(specs)} runs, {len(status)} already finished, {len(todo)} to run on {jobs} processes")
    with atomic_write(out / "campaign.json", "w") as f:
        json.dump({"runs": [s.to_dict() for s in specs], "mldepth_m": MLDEPTH_M, "keep_months": KEEP_MONTHS, "max_years": MAX_YEARS,
                   "settled_drift_K": SETTLED_DRIFT_K, "design_seed": DESIGN_SEED, "design_ranges": DESIGN_RANGES},
                  f, indent=1)
    status.update(_run_pool(_run_one, todo, (str(out),), jobs, echo))
    return status


#: Catalogue planets always held out for testing (one per rotation regime), when present.
TEST_CATALOGUE = ("trappist-1_e", "kepler-442_b")
#: Quantiles of instellation, within each regime's designed runs, held out for test and val.
TEST_QUANTILES = (1 / 6, 3 / 6, 5 / 6)
VAL_QUANTILES = (2 / 6, 4 / 6)


def held_out_split(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """The documented held-out rule, fixed before any training: {run: planet spec dict} ->
    {"train", "val", "test"} run lists.

    Test: the catalogue planets `TEST_CATALOGUE` (TRAPPIST-1 e, synchronous; Kepler-442 b, fast),
    plus, in each rotation regime, the designed runs at the `TEST_QUANTILES` of instellation.
    Val: in each regime, the designed runs at the `VAL_QUANTILES`. Everything else trains. So
    both regimes and the whole instellation range are held out, and no held-out planet is chosen
    by looking at results.
    """
    test = [r for r in TEST_CATALOGUE if r in runs]
    val: list[str] = []
    for synchronous in (True, False):
        designed = sorted((r for r, s in runs.items() if r.startswith("design-") and bool(s.get("synchronous")) == synchronous),
                          key=lambda r: (float(runs[r]["instellation_earth"]), r))
        taken: set[str] = set()
        for quantiles, into in ((TEST_QUANTILES, test), (VAL_QUANTILES, val)):
            for q in quantiles:
                if not designed:
                    break
                i = min(len(designed) - 1, int(round(q * (len(designed) - 1))))
                while designed[i] in taken and i + 1 < len(designed):
                    i += 1
                if designed[i] not in taken:
                    taken.add(designed[i])
                    into.append(designed[i])
    held = set(test) | set(val)
    return {"train": sorted(r for r in runs if r not in held), "val": sorted(val), "test": sorted(test)}
