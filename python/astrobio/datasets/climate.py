"""The default dataset's climate part: the ExoPlaSim campaign (`astrobio.simulate.campaign`):
real catalogue planets plus a space-filling design over instellation, rotation (synchronous and
fast in equal numbers), radius/gravity, surface pressure and stellar temperature.

The runs are shipped with the package as one compact pack (`data/exoplasim_climate.npz`,
float16, plus `exoplasim_climate.json` with every run's parameters, drift and provenance, and
the runs left out with the reason), so building the store needs no GCM run. Regenerate it with
`astrobio simulate --campaign --out DIR` then `astrobio datasets pack-climate DIR` (about an hour
on 2 cores; `astrobio.simulate.pack` writes it).

Sample = one monthly mean of one settled planet (the last months of its run; the campaign's
planets have circular orbits and no obliquity, so the months are samples of one climate, not
seasons): cube [ta, ua, va, hus, wap] x 10 sigma levels x 32 lat x 64 lon; params = the planet's
parameters plus two derived from them (rotation rate, equilibrium temperature). Splits are by
planet, chosen by the campaign's documented rule, so evaluation is on planets never seen in
training.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np

from .._version import __version__
from ..climate_scaling import BOND_ALBEDO, equilibrium_temperature
from ..errors import DataNotFoundError, IntegrityError
from ..ingest._provenance import file_digest, inputs_digest, up_to_date
from ..ingest.climate import valid_range
from ..stores.cube import Variable
from ..stores.cube_writer import CubeWriter

__all__ = ["PACK_NAME", "PACK_FORMAT", "PACK_FORMAT_VERSION", "PACK_CODEC", "VARIABLES", "PARAMS", "pack_path",
           "run_params", "build_climate_store"]

PACK_NAME = "exoplasim_climate"
PACK_FORMAT = "astrobio.exoplasim-pack"
#: 2: the campaign (kept months per run, settled runs only, exclusions recorded, derived params).
PACK_FORMAT_VERSION = 2
# Valid ranges come from the climate ingest's one table of ranges.
VARIABLES = [
    Variable("ta", "K", valid_range("ta"), "air temperature"),
    Variable("ua", "m s-1", valid_range("ua"), "eastward wind"),
    Variable("va", "m s-1", valid_range("va"), "northward wind"),
    Variable("hus", "kg kg-1", valid_range("hus"), "specific humidity"),
    Variable("wap", "Pa s-1", valid_range("wap"), "vertical pressure velocity (omega)"),
]
PARAMS = [
    Variable("instellation", "S_earth", (0.0, 100.0), "top-of-atmosphere stellar flux / 1367 W m-2"),
    Variable("star_teff", "K", (2000.0, 10000.0), "stellar effective temperature"),
    Variable("radius", "R_earth", (0.1, 5.0), "planet radius"),
    Variable("gravity", "m s-2", (0.5, 50.0), "surface gravity"),
    Variable("rotation_period", "day", (0.1, 1000.0), "sidereal rotation period"),
    Variable("rotation_rate", "day-1", (0.0, 10.0), "1 / rotation period (the Coriolis parameter's scale)"),
    Variable("synchronous", "1", (0.0, 1.0), "1 when tidally locked"),
    Variable("surface_pressure", "bar", (0.01, 100.0), "surface pressure"),
    Variable("equilibrium_temperature", "K", (50.0, 1000.0),
             f"(S (1 - {BOND_ALBEDO}) / (4 sigma))^(1/4): full redistribution, Bond albedo {BOND_ALBEDO}"),
]
SPEC_KEYS = ("instellation_earth", "star_teff_k", "radius_earth", "gravity_ms2", "rotation_period_days",
             "synchronous", "surface_pressure_bar")


#: The pack's cube codec: byte-shuffled zstd (blosc) packs float16 climate fields ~20% smaller
#: than zlib.
PACK_CODEC = numcodecs.Blosc(cname="zstd", clevel=9, shuffle=numcodecs.Blosc.SHUFFLE)
_PACK_CODEC = PACK_CODEC  # the name benches/gcm_fields.py imports


def pack_path(directory: Path | None = None) -> tuple[Path, Path]:
    """Paths of the shipped pack (.npz, .json), or of a pack in `directory`."""
    base = Path(directory) if directory is not None else Path(str(resources.files("astrobio.datasets") / "data"))
    return base / f"{PACK_NAME}.npz", base / f"{PACK_NAME}.json"


def run_params(spec: Mapping[str, Any], n_samples: int) -> np.ndarray:
    """[n_samples, P] parameter rows of one run (the same planet in every sample), in `PARAMS` order."""
    missing = [k for k in SPEC_KEYS if spec.get(k) is None]
    if missing:
        raise IntegrityError(f"run parameters lack {missing}")
    s, teff, radius, gravity, period, sync, ps = (float(spec[k]) for k in SPEC_KEYS)
    planet = np.array([s, teff, radius, gravity, period, 1.0 / period, sync, ps, float(equilibrium_temperature(s))])
    return np.tile(planet, (n_samples, 1)).astype(np.float32)


def build_climate_store(out: Path, pack_dir: Path | None = None) -> Path:
    """Write the climate store at `out` from the pack (a no-op when it is up to date)."""
    npz, js = pack_path(pack_dir)
    for p in (npz, js):
        if not p.is_file():
            raise DataNotFoundError("the ExoPlaSim climate pack is missing", path=str(p),
                                    hint="Reinstall astrobio, or regenerate it: astrobio simulate --campaign --out DIR && astrobio datasets pack-climate DIR")
    sources = [{"path": str(p), "name": p.name, "digest": file_digest(p)} for p in (npz, js)]
    digest = inputs_digest(sources, {"part": "climate"}, _code_version())
    if up_to_date(out, digest):
        return out
    doc = json.loads(js.read_text())
    if doc.get("format") != PACK_FORMAT or doc.get("format_version") != PACK_FORMAT_VERSION:
        raise IntegrityError(f"climate pack is {doc.get('format')} version {doc.get('format_version')}, this astrobio reads "
                             f"version {PACK_FORMAT_VERSION}; reinstall astrobio, or regenerate it: "
                             "astrobio simulate --campaign --out DIR && astrobio datasets pack-climate DIR", path=str(js))
    with np.load(npz) as z:
        cubes = np.frombuffer(_PACK_CODEC.decode(z["cubes_blosc"].tobytes()), np.float16).reshape(doc["shape"])
        lat, lon, level, month = (np.asarray(z[k]) for k in ("lat", "lon", "level", "month"))
    flip = lat[0] > lat[-1]  # the model writes north to south; the store is south to north
    coords = {
        "level": {"name": "sigma", "values": level.tolist(), "units": "1 (sigma = p / p_surface)"},
        "lat": {"values": (lat[::-1] if flip else lat).tolist(), "units": "degrees_north"},
        "lon": {"values": lon.tolist(), "units": "degrees_east"},
    }
    provenance = {
        "kind": "simulation", "model": "ExoPlaSim", "sources": sources, "inputs_digest": digest,
        "storage_dtype_of_source": doc.get("dtype", "float16"), "months_kept": doc.get("months_kept"),
        "settling": doc.get("settling"), "excluded": doc.get("excluded", {}),
        "runs": {r["id"]: r["provenance"] for r in doc["runs"]},
        "command": "astrobio datasets build default",
    }
    if doc.get("untouched"):  # the untouched evaluation campaign: the trainer refuses the store
        provenance.update(untouched=True, command="astrobio datasets pack-climate DIR --untouched --store PATH")
    units = [run.get("units", {}) for run in doc["runs"]]
    if any(u != units[0] for u in units):
        raise IntegrityError("runs of the pack disagree on units", path=str(js))
    # Units as the model wrote them (ExoPlaSim writes hus as "1", i.e. kg kg-1).
    variables = [Variable(v.name, units[0].get(v.name, v.units), v.valid_range, v.long_name) for v in VARIABLES]
    with CubeWriter(out, variables=variables, params=PARAMS, sample_shape=tuple(cubes.shape[2:]), coords=coords,
                     name="astrobio default: ExoPlaSim climate campaign (catalogue planets + designed runs)", provenance=provenance) as w:
        for i, run in enumerate(doc["runs"]):
            cube = cubes[i].astype(np.float32)
            if flip:
                cube = cube[..., ::-1, :]
            w.add_run(run["id"], cube, run_params(run["spec"], len(month)),
                      attrs={"spec": run["spec"], "month": month.tolist(), "drift_K_per_60d": run.get("drift_K_per_60d")})
        return Path(w.commit(doc["split"]))  # a local directory: always a Path


def _code_version() -> str:
    return f"{__version__}/climate-v3"  # v3: CF coordinate arrays (same content digest)
