"""The exported emulator (`torch.export` program) reproduces `predict` to float tolerance in a
process that cannot import astrobio (`python -I`, astrobio blocked), for a run and an ensemble."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from astrobio.emulator import export_emulator, load_emulator
from astrobio.errors import ConfigError

# Runs in a clean interpreter: -I ignores PYTHONPATH and the user site, and astrobio is blocked
# outright (the venv may hold an editable install of it).
SCRIPT = """
import sys
sys.modules["astrobio"] = None
try:
    import astrobio
except ImportError:
    pass
else:
    raise SystemExit("astrobio was importable")
import numpy as np, torch
program = torch.export.load(sys.argv[1]).module()
with torch.no_grad():
    mean, spread = program(torch.as_tensor(np.load(sys.argv[2])))
np.save(sys.argv[3], mean.numpy())
np.save(sys.argv[4], spread.numpy())
"""


@pytest.mark.parametrize("which", ["tiny_run", "ensemble_run"])
def test_exported_program_reproduces_predict_without_astrobio(which: str, request, tmp_path: Path) -> None:
    emulator = load_emulator(request.getfixturevalue(which))
    program, card = export_emulator(emulator, tmp_path / "emulator.pt2")
    doc = json.loads(card.read_text())
    assert [p["name"] for p in doc["inputs"]] == emulator.param_names and doc["members"] == len(emulator.members)
    planets = [emulator.predict("earth"), emulator.predict(params={"instellation": 0.7, "star_teff": 3000,
                                                                   "rotation_period": "synchronous", "orbital_period": 9})]
    rows = np.array([[float(ds[p].values[0]) for p in emulator.param_names] for ds in planets])
    np.save(tmp_path / "rows.npy", rows)
    (tmp_path / "run.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-I", str(tmp_path / "run.py"), str(program), str(tmp_path / "rows.npy"),
                           str(tmp_path / "mean.npy"), str(tmp_path / "spread.npy")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    mean, spread = np.load(tmp_path / "mean.npy"), np.load(tmp_path / "spread.npy")
    scale = emulator.norm.scale[:, :, None, None]
    for i, ds in enumerate(planets):
        want = np.stack([ds[v.name].values[0] for v in emulator.variables])
        assert (np.abs(mean[i] - want) / scale).max() < 1e-4  # float32 tolerance in normalized units
        if emulator.ensemble:
            got = np.stack([ds[f"{v.name}_spread"].values[0] for v in emulator.variables])
            assert (np.abs(spread[i] - got) / scale).max() < 1e-4 and spread[i].max() > 0
        else:
            assert not spread[i].any()


def test_export_needs_a_pt2_path(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.pt2"):
        export_emulator(load_emulator(tiny_run), tmp_path / "model.onnx")
