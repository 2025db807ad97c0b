"""Security: nothing is trusted blindly.

- Checkpoints load with `weights_only=True`: a pickled payload is refused with IntegrityError
  and its code never runs (the zip-format `__reduce__` payload and numpy globals through the CLI
  are in tests/test_train_checkpoint.py and tests/test_train_run.py; here the other carriers).
- Run ids, names and paths cannot leave the store root: traversal (`../`, absolute, NUL,
  separators) in run ids is refused by the writer, and names read from a manifest are confined.
- Credentials (URL userinfo, signed query values, secret environment values) never appear in
  error lines, logs, run folders or manifests.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import astrobio
from astrobio.ingest.catalogue import ingest_catalogue
from astrobio.stores._group import GroupWriter, read_array, read_manifest
from astrobio.train import load_checkpoint
from astrobio.train.cli import main

from ._util import TINY, fresh_copy, one_line_error


class Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _valid_shape(extra: object) -> dict:
    return {"state_dict": {"w": torch.zeros(2)}, "astrobio": {"format": 1, "config": {}, "meta": extra}}


CARRIERS = {
    # name: write(path, payload)
    "legacy torch format": lambda p, x: torch.save(_valid_shape(x), p, _use_new_zipfile_serialization=False),
    "plain pickle file": lambda p, x: p.write_bytes(pickle.dumps(_valid_shape(x))),
    "payload deep in the astrobio section": lambda p, x: torch.save(_valid_shape({"a": [{"b": (1, x)}]}), p),
    "payload as a tensor subclass state": lambda p, x: torch.save({"state_dict": {"w": x}, "astrobio": {"format": 1, "config": {}}}, p),
}


@pytest.mark.parametrize("carrier", list(CARRIERS))
def test_a_pickled_payload_is_refused_and_never_runs(tmp_path, capsys, carrier):
    marker = tmp_path / "payload-ran"
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    CARRIERS[carrier](ckpt, Payload(marker))
    with pytest.raises(astrobio.IntegrityError, match="refused to load: the checkpoint holds more than tensors and plain values"):
        load_checkpoint(ckpt)
    assert main(["--resume", str(run)]) == 2  # the CLI reads the resumed run's config first
    line = one_line_error(capsys)
    assert line.startswith("astrobio: error: IntegrityError: ") and "refused to load" in line, line
    assert not marker.exists()


BAD_IDS = ["../escape", "../../etc/passwd", "/abs/path", "a/b", "a\\b", "a\0b", ".hidden", "..", "", " lead"]


@pytest.mark.parametrize("run_id", BAD_IDS, ids=[repr(r) for r in BAD_IDS])
def test_run_ids_with_traversal_are_refused(tmp_path, run_id):
    cubes = np.ones((1, 1, 1, 2, 2), np.float32)
    with pytest.raises(astrobio.ConfigError, match="run id .* must match"):
        astrobio.write_store(tmp_path / "s.zarr", {run_id: cubes}, variables=[astrobio.Variable("x", "1")])
    assert sorted(os.listdir(tmp_path)) == []  # nothing written, the build removed


def test_names_in_a_manifest_never_lead_outside_the_store(template, tmp_path):
    """A crafted manifest (copied, edited) names '../' or absolute paths: readers refuse them
    instead of hashing or reading files outside the store."""
    from astrobio.train import train

    from ._util import tiny_config

    outside = tmp_path / "outside"
    (outside / "cubes").mkdir(parents=True)
    for name in ("../outside/cubes", "/", "cubes/../../outside"):
        store = fresh_copy(template, tmp_path / f"s{len(os.listdir(tmp_path))}.zarr")
        meta = json.loads((store / "zarr.json").read_text())
        meta["attributes"]["astrobio"]["digests"][name] = "sha256:0"
        (store / "zarr.json").write_text(json.dumps(meta))
        with pytest.raises(astrobio.IntegrityError, match="which is not an array of the store"):
            astrobio.open_store(store).verify_digest()
        with pytest.raises(astrobio.IntegrityError, match="which is not an array of the store"):
            train(tiny_config(store, tmp_path / "run"))
    # table and graph stores: the same rule for array names from the manifest
    with GroupWriter(tmp_path / "t.zarr") as g:
        g.array("x", np.arange(3.0), ("row",))
        g.commit({"format": "astrobio.table", "format_version": 1, "digests": {"../outside/cubes": "sha256:0"}})
    with pytest.raises(astrobio.IntegrityError, match="a path outside the store"):
        read_manifest(tmp_path / "t.zarr", "astrobio.table", "hint")
    for name in ("../outside/cubes", "/etc", "x/../../outside", "x\0"):
        with pytest.raises(astrobio.IntegrityError, match="leads outside the store"):
            read_array(tmp_path / "t.zarr", name)
    np.testing.assert_array_equal(read_array(tmp_path / "t.zarr", "x"), np.arange(3.0))


def test_nul_in_paths_is_one_clear_line(tmp_path, capsys):
    assert main(["--store", "a\0b.zarr", "--output-dir", str(tmp_path / "r"), *TINY]) == 2
    assert "ConfigError: data.location contains a NUL character" in one_line_error(capsys)
    assert main(["--store", str(tmp_path / "s.zarr"), "--output-dir", "r\0un", *TINY]) == 2
    assert "ConfigError: trainer.output_dir contains a NUL character" in one_line_error(capsys)


SECRETS = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-env-secret", "HF_TOKEN": "hf_envtoken1234567890"}
URL = ("s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMIurlpassword@bucket/climate.zarr"
       "?X-Amz-Signature=deadbeefsignature&X-Amz-Security-Token=sessiontoken999")
LEAKS = ["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMIurlpassword", "deadbeefsignature", "sessiontoken999", *SECRETS.values()]


def _no_leak(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in LEAKS:
        assert secret.encode() not in data, f"{secret} leaked into {where}"


def test_credentials_never_reach_error_lines(tmp_path, capsys, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    assert main(["--store", URL, "--output-dir", str(tmp_path / "r"), *TINY]) == 2
    line = one_line_error(capsys)
    # object storage takes credentials from the AWS variables only: a URL carrying them is refused
    # outright, without echoing it
    assert "ConfigError" in line and "must not carry credentials" in line, line
    _no_leak(line, "the error line")
    # a secret from the environment that ends up in a path is redacted too
    assert main(["--store", str(tmp_path / SECRETS["HF_TOKEN"] / "x.zarr"), "--output-dir", str(tmp_path / "r"), *TINY]) == 2
    line = one_line_error(capsys)
    assert "***" in line
    _no_leak(line, "the error line")
    err = astrobio.IntegrityError("bad chunk", path=URL)
    _no_leak(str(err) + str(err.path), "IntegrityError")
    err = astrobio.DataNotFoundError("missing", path=URL)
    _no_leak(str(err) + str(err.path), "DataNotFoundError")


def test_credentials_never_reach_run_folders_logs_or_manifests(template, tmp_path, capsys, monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    # an ingest whose command line carries a credential URL: the manifest records it redacted
    csv = tmp_path / "nasa.csv"
    csv.write_text("pl_name,pl_rade,pl_bmasse,pl_orbper,pl_orbsmax,pl_eqt,pl_insol,st_teff,st_rad,st_mass\n"
                   "TRAPPIST-1 e,0.92,0.69,6.0996,0.02925,251,0.66,2566,0.119,0.089\n")
    monkeypatch.setattr(sys, "argv", ["astrobio", "ingest", "catalogue", "--out", "t.zarr", csv.name, "--note", URL,
                                      f"--token={SECRETS['HF_TOKEN']}"])
    table = ingest_catalogue(csv, tmp_path / "table.zarr", schema="nasa")
    command = json.loads((table / "zarr.json").read_text())["attributes"]["astrobio"]["provenance"]["command"]
    assert "s3:/" in command and "***" in command, command
    # a whole training run with secrets in the environment: nothing it writes or prints holds them
    store = fresh_copy(template, tmp_path / "climate.zarr")
    run = tmp_path / "run"
    assert main(["--store", str(store), "--output-dir", str(run), "--max-epochs", "1", *TINY,
                 "--set", "trainer.logger=csv"]) == 0  # the later --set wins: CSV logs are written and checked too
    assert list(run.rglob("metrics.csv"))
    captured = capsys.readouterr()
    _no_leak(captured.out + captured.err, "the console")
    for root in (table, run, store):
        for p in root.rglob("*"):
            if p.is_file():
                _no_leak(p.read_bytes(), str(p))
    shutil.rmtree(run)
