"""The observation collector: real survey data -> an observation store of patches.

Sources (real, fetched on first use, pinned and hash-checked: `datasets.sources`): the ZTF
alerts of fink-science 7.4.0 (586 alerts with their cutout triplets and real/bogus scores) and
the ZTF science image of ztfimg 0.19.0 with its pipeline mask, cross-matched with the VSX
catalogue of fink-science. Positives are validated detections, negatives are bogus alerts and
background patches made in the same image (`_ztf_alerts`, `_ztf_image` say how and the labels'
weaknesses). The selection (`ObservationRequest`) filters every patch; an empty selection is a
ConfigError (a 422 over REST), never an empty store.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.sources import SOURCES, package_file
from pydantic import ConfigDict, Field, model_validator

from ..errors import ConfigError
from ..stores.observation import write_observations
from ._patches import Patches, concat, file_identity
from ._ztf_alerts import read_alerts
from ._ztf_image import read_image
from .formats import IngestContext, SourceFormat, StrictRequest

__all__ = ["FORMAT", "DEFAULT_PART", "ALERT_FILES", "IMAGE_FILES", "ObservationRequest", "ingest_observations", "select"]

log = logging.getLogger(__name__)

#: the real alert files (fink-science's simulated ELAsTiCC alerts are never read)
ALERT_FILES = ("data/alerts/alerts.parquet", "data/alerts/20240606_iband_history.parquet",
               "data/alerts/CTAO_blazar_datatest_v20-12-24.parquet")
IMAGE_FILES = ("data/ztf_20200924431759_000655_zr_c13_o_q3_sciimg.fits",
               "data/ztf_20200924431759_000655_zr_c13_o_q3_mskimg.fits")
VSX_FILE = "data/catalogs/vsx.parquet"
SURVEYS = ("ZTF",)
PRODUCTS = ("alert", "image")
VALIDATIONS = ("survey_score", "pipeline", "catalogue")


class ObservationRequest(StrictRequest):
    """What to collect. Every filter applies to every patch (positives and negatives).

    `start`/`end`: ISO dates (UTC, inclusive; "" for open); `confidence_threshold`: keep patches
    whose label confidence is at least this; `validation_status`: keep these validations (empty:
    all); `anomaly_types`: keep these classes (empty: all; image negatives are "background");
    `max_samples`: at most this many patches (0: no limit), drawn with `seed`; `patch_size`:
    pixels per side (at most 63, the alert stamps); `negatives_per_positive`: background patches
    per image detection."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    surveys: list[str] = Field(default_factory=lambda: list(SURVEYS), max_length=8, description="surveys to collect (ZTF)")
    products: list[str] = Field(default_factory=lambda: list(PRODUCTS), max_length=8, description="survey products: alert, image")
    start: str = Field("", description="first observation date, ISO (UTC, inclusive)")
    end: str = Field("", description="last observation date, ISO (UTC, inclusive)")
    confidence_threshold: float = Field(0.0, ge=0.0, le=1.0, description="keep patches whose label confidence is at least this")
    validation_status: list[str] = Field(default_factory=list, max_length=8, description="keep these validations (survey_score, pipeline, catalogue)")
    anomaly_types: list[str] = Field(default_factory=list, max_length=256, description="keep these classes (SIMBAD/VSX class, solar_system, background)")
    max_samples: int = Field(0, ge=0, description="at most this many patches (0: all)")
    patch_size: int = Field(63, ge=8, le=63, description="pixels per side, 8 to 63")
    negatives_per_positive: int = Field(1, ge=0, le=100, description="background patches per image detection")
    max_image_positives: int = Field(1000, ge=0, description="image detections to keep (0: all)")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="the draw of negatives and of max_samples")

    @model_validator(mode="after")
    def _in_domain(self) -> "ObservationRequest":
        try:
            self.check()
        except ConfigError as e:  # pydantic reports it as a field error: a 422 over REST
            raise ValueError(str(e)) from None
        return self

    def check(self) -> None:
        """ConfigError naming the first field out of its domain."""
        unknown = [s for s in self.surveys if s not in SURVEYS]
        if unknown or not self.surveys:
            raise ConfigError(f"surveys {list(self.surveys)}: choose from {list(SURVEYS)}")
        if not self.products or any(p not in PRODUCTS for p in self.products):
            raise ConfigError(f"products {list(self.products)}: choose from {list(PRODUCTS)}")
        if not 8 <= self.patch_size <= 63:
            raise ConfigError(f"patch_size {self.patch_size}: must be 8 to 63 pixels (the alert stamps are 63x63)")
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise ConfigError(f"confidence_threshold {self.confidence_threshold}: must be in [0, 1]")
        if self.negatives_per_positive < 0 or self.max_samples < 0 or self.max_image_positives < 0:
            raise ConfigError("negatives_per_positive, max_samples and max_image_positives must be >= 0")
        bad = [v for v in self.validation_status if v not in VALIDATIONS]
        if bad:
            raise ConfigError(f"validation_status {bad}: choose from {list(VALIDATIONS)}")
        for name in ("start", "end"):
            _date(getattr(self, name), name)
        if self.start and self.end and _date(self.start, "start") > _date(self.end, "end"):
            raise ConfigError(f"start {self.start} is after end {self.end}")


def _date(text: str, name: str) -> str:
    """An ISO date or datetime, normalized to 'YYYY-MM-DDTHH:MM:SS' (UTC) for comparison."""
    if not text:
        return ""
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None).isoformat(timespec="seconds")
    except ValueError:
        raise ConfigError(f"{name} {text!r} is not an ISO date (e.g. 2020-09-24 or 2020-09-24T10:00:00)") from None


#: the default dataset's observations part: 32-pixel patches (the alert stamps' central 32"),
#: 1000 pipeline sources of the ZTF image and as many background patches
DEFAULT_PART = ObservationRequest(patch_size=32)


def select(patches: Patches, req: ObservationRequest) -> Patches:
    """The patches that satisfy every filter of `req` (then at most `max_samples`)."""
    c = patches.columns
    n = len(patches)
    keep = np.ones(n, bool)
    keep &= np.isin(c["survey"], list(req.surveys)) & np.isin(c["product"], list(req.products))
    dates = np.array([d[:19] for d in c["date"]], dtype=object)
    if req.start:
        keep &= dates >= _date(req.start, "start")
    if req.end:
        end = _date(req.end, "end")
        end = end[:10] + "T23:59:59" if len(req.end) <= 10 else end  # a bare end date includes its day
        keep &= dates <= end
    keep &= np.asarray(c["confidence"], float) >= req.confidence_threshold
    if req.validation_status:
        keep &= np.isin(c["validation"], list(req.validation_status))
    if req.anomaly_types:
        keep &= np.isin(c["anomaly_type"], list(req.anomaly_types))
    idx = np.flatnonzero(keep)
    if req.max_samples and len(idx) > req.max_samples:
        idx = np.sort(np.random.default_rng(req.seed).permutation(idx)[:req.max_samples])  # real-data-ok: a subset
    return patches.take(idx)


def _file(package: str, relative: str) -> tuple[Path, str]:
    return package_file(package, relative), f"{package}/{relative}"


def read_sources(req: ObservationRequest, *, pixels: bool = True) -> Patches:
    """Every patch the request's surveys and products can give, before the filters.
    `pixels=False`: the metadata only (0x0-pixel patches), for checking what a request selects."""
    parts = []
    if "alert" in req.products:
        files = tuple(_file("fink_science", f) for f in ALERT_FILES)
        parts.append(read_alerts(files, size=req.patch_size) if pixels else _alert_metadata(files, req.patch_size))
    if "image" in req.products:
        (sci, sci_name), (msk, msk_name) = (_file("ztfimg", f) for f in IMAGE_FILES)
        vsx, _ = _file("fink_science", VSX_FILE)
        parts.append(read_image(sci, msk, vsx, (sci_name, msk_name), size=req.patch_size,
                                negatives_per_positive=req.negatives_per_positive,
                                max_positives=req.max_image_positives or None, seed=req.seed, pixels=pixels))
    return concat(parts, req.patch_size if pixels else 0)


def _alert_metadata(files: tuple[tuple[Path, str], ...], size: int) -> Patches:
    """The alerts' metadata (0x0-pixel patches), kept per source-file version and patch size."""
    return _cached_alert_metadata(tuple((file_identity(p), name) for p, name in files), size)


@functools.lru_cache(maxsize=8)
def _cached_alert_metadata(key: tuple[tuple[tuple[str, int, int], str], ...], size: int) -> Patches:
    full = read_alerts([(Path(ident[0]), name) for ident, name in key], size=size)
    return Patches(np.zeros((len(full), full.pixels.shape[1], 0, 0), np.float32), full.columns, full.dropped)


def _provenance(req: ObservationRequest) -> dict[str, Any]:
    used = {"fink_science": [*ALERT_FILES, VSX_FILE] if "alert" in req.products or "image" in req.products else [],
            "ztfimg": list(IMAGE_FILES) if "image" in req.products else []}
    return {
        "source_format": "observations",
        "sources": [{"package": SOURCES[p].dist, "version": SOURCES[p].version, "archive": SOURCES[p].wheel,
                     "sha256": SOURCES[p].sha256, "files": files} for p, files in used.items() if files],
        "label_sources": {
            "alert": "ZTF drb (deep real/bogus): real >= 0.9, bogus < 0.5, between dropped",
            "image": "sep 5-sigma detections confirmed by the ZTF pipeline mask (bit 1), VSX within 2 arcsec; "
                     "negatives >= 10 px from every source pixel, detection and VSX star",
        },
    }


def ingest_observations(out: str | Path, request: ObservationRequest | None = None, *, name: str = "") -> Path | str:
    """Collect the patches `request` selects into the observation store `out`; returns its path.
    ConfigError when the request is invalid or selects nothing."""
    req = request or ObservationRequest()
    req.check()
    chosen = select(read_sources(req), req)
    if len(chosen) == 0:
        raise ConfigError(f"the selection is empty: no patch satisfies {_summary(req)}")
    log.info("collected %d patches (%d positive)", len(chosen), int(np.sum(chosen.columns["label"])))
    return write_observations(out, chosen, request=_as_json(req), provenance=_provenance(req), name=name)


def _as_json(req: ObservationRequest) -> dict[str, Any]:
    return req.model_dump()


def _summary(req: ObservationRequest) -> str:
    default = ObservationRequest()
    parts = [f"{k}={v}" for k, v in _as_json(req).items() if v != _as_json(default)[k]]
    return ", ".join(parts) or "the default request"


def _ingest(request: ObservationRequest, out: Path | str, context: IngestContext) -> Path | str:
    return ingest_observations(out, request, name=context.dataset)


def precheck(request: ObservationRequest, context: IngestContext | None = None) -> int:
    """How many patches `request` selects, from the sources' metadata (no pixels cut; the
    image's detections are kept for the collect that follows); ConfigError when none: the REST
    collect answers 422 instead of queueing a collect that would fail."""
    request.check()
    n = len(select(read_sources(request, pixels=False), request))
    if n == 0:
        raise ConfigError(f"the selection is empty: no patch satisfies {_summary(request)}")
    return n


FORMAT = SourceFormat(
    "observations", kind="observation", request=ObservationRequest, ingest=_ingest, precheck=precheck,
    help="real ZTF alerts and a ZTF science image -> patches around validated detections, with negatives",
    examples=("astrobio ingest observations --out obs.zarr --patch-size 32 --start 2020-01-01 --confidence-threshold 0.9",))
