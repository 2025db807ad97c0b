"""`import astrobio` does not load the Rust core (it loads on first use, through
`astrobio._native`), so `astrobio validate` reports a missing or broken core as a failed
component, checks the stores that do not need it, and refuses a cube store in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

DATA = Path(__file__).parent / "stores" / "data"


def test_validate_reports_a_broken_core_and_still_checks_what_it_can(tmp_path: Path) -> None:
    with tarfile.open(DATA / "old_stores.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    site = tmp_path / "site"
    site.mkdir()
    # a broken native module: importing astrobio._core raises ImportError in that process
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['astrobio._core'] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *(p for p in sys.path if p)])}
    proc = subprocess.run([sys.executable, "-m", "astrobio", "validate", "--store", str(tmp_path / "table_nasa.zarr"),
                           "--store", str(tmp_path / "fixture_cube.zarr")], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = {line.split()[0] + " " + line.split()[1]: line for line in proc.stdout.splitlines() if len(line.split()) > 2}
    assert "FAIL" in lines["component astrobio._core"]
    assert lines["table table_nasa.zarr"].split()[2] == "ok"
    cube = lines["cube fixture_cube.zarr"]
    assert "FAIL" in cube and "DependencyError: the Rust data core astrobio._core cannot be imported" in cube
