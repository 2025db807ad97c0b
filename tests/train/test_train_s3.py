"""`python -m astrobio.train --store s3://...`: the trainer reads a store from object storage
(a real local S3 server) through the Rust core, records the URL (no credentials) and gives the
same held-out numbers as the same store on local disk."""

from __future__ import annotations

import json
from pathlib import Path

from astrobio.stores import _remote
from astrobio.train.cli import main
from s3_fixtures import S3, s3, s3_session  # noqa: F401  (fixtures)

ARGS = ["--max-epochs", "1", "--batch-size", "4", "--set", "trainer.progress_bar=false",
        "--set", "trainer.logger=none", "--set", "trainer.plots=false"]


def test_training_on_an_s3_store_equals_training_on_the_local_copy(s3: S3, climate_slice: Path, tmp_path: Path) -> None:
    url = s3.url("stores/train-s3/slice.zarr")
    _remote.upload(climate_slice, url)
    assert main(["--store", url, "--output-dir", str(tmp_path / "s3"), *ARGS]) == 0
    assert main(["--store", str(climate_slice), "--output-dir", str(tmp_path / "local"), *ARGS]) == 0
    remote = json.loads((tmp_path / "s3" / "summary.json").read_text())
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert remote["store"] == url and remote["config"]["data"]["location"] == url
    assert remote["store_digest"] == local["store_digest"]
    assert remote["evaluation"] == local["evaluation"]  # same bytes in, same seed: the same run
    assert s3.env.get("AWS_SECRET_ACCESS_KEY", "never") not in json.dumps(remote)
