"""Observation fixtures: small observation stores collected from the real ZTF sources (fink-science
alerts, the ztfimg science image; fetched once per machine into the shared source cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrobio.ingest.observations import ObservationRequest, ingest_observations

#: small and quick: all alerts, 40 image detections + 40 background patches, 32-pixel patches
SMALL = ObservationRequest(patch_size=32, max_image_positives=40, negatives_per_positive=1)


@pytest.fixture(scope="session")
def obs_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("astropy")
    return Path(ingest_observations(tmp_path_factory.mktemp("obs") / "obs.zarr", SMALL))
