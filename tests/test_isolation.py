"""Optional components are isolated: with torch_geometric, transformers or peft missing (or
failing at import), `import astrobio` and the other models still work, and asking for the
unavailable model is one line naming the pip extra. Each case runs in a fresh interpreter where
the import is made to fail before astrobio is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import astrobio

# the astrobio under test (installed wheel in CI, the source tree in an editable install): the
# child interpreters must import the same one, native module included
PACKAGE_ROOT = Path(astrobio.__file__).resolve().parents[1]

PRELUDE = textwrap.dedent('''
    import importlib.abc, importlib.metadata, sys
    how, names = sys.argv[1], sys.argv[2].split(",")

    def blocked(fullname):
        return fullname.split(".")[0] in names

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if blocked(fullname):
                if how == "missing":          # not installed: no module, no distribution metadata
                    raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
                # installed but broken, e.g. a binary built against another torch
                raise ImportError(f"{fullname}/_C.so: undefined symbol: _ZN3c104cuda (simulated broken install)",
                                  name=fullname)
            return None

    sys.meta_path.insert(0, Block())
    if how == "missing":
        def hide(real):
            def wrapper(name, *args, **kwargs):
                if name.replace("-", "_").split(".")[0] in names:
                    raise importlib.metadata.PackageNotFoundError(name)
                return real(name, *args, **kwargs)
            return wrapper
        importlib.metadata.version = hide(importlib.metadata.version)
        importlib.metadata.distribution = hide(importlib.metadata.distribution)
''')

BODY = textwrap.dedent('''
    import astrobio, astrobio.models, astrobio.train
    import torch
    from astrobio.models import DatacubeEmulator, FusionModel
    m = DatacubeEmulator(3, (2, 2, 4, 8), hidden=8, channels=[8, 8])
    assert m(torch.zeros(1, 3)).shape == (1, 2, 2, 4, 8)
    f = FusionModel(3, (2, 2, 8, 16), 2)
    assert set(f(torch.zeros(1, 3), torch.zeros(1, 2, 2, 8, 16))) == {"params", "cube", "fusion"}
    from astrobio.train.cli import main
    broken, other = sys.argv[3], sys.argv[4:]
    print("BROKEN-RC", main(["--model", broken, "--set", "trainer.logger=none"]), flush=True)
    if other:
        print("OTHER-RC", main(other), flush=True)
''')


def _run(tmp_path, how: str, names: str, broken: str, *other: str) -> subprocess.CompletedProcess:
    script = tmp_path / "isolate.py"
    script.write_text(PRELUDE + BODY)
    env = {"PYTHONPATH": str(PACKAGE_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "ASTROBIO_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(script), how, names, broken, *other], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("astrobio: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def test_without_torch_geometric_graph_is_one_line_and_multimodal_trains(tmp_path, climate_slice):
    proc = _run(tmp_path, "missing", "torch_geometric", "graph",
                "--model", "multimodal", "--store", str(climate_slice), "--max-epochs", "1", "--output-dir",
                str(tmp_path / "mm"), "--set", "trainer.logger=none", "--set", "trainer.plots=false",
                "--set", "trainer.progress_bar=false", "--set", "model.options.embed=8")
    assert "BROKEN-RC 2" in proc.stdout and "OTHER-RC 0" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    line = _error_line(proc)
    assert "DependencyError" in line and "pip install \"astrobio[graph]\"" in line and "torch_geometric" in line
    assert (tmp_path / "mm" / "summary.json").is_file()


def test_without_transformers_language_is_one_line_and_graph_trains(tmp_path, ecoli_graphs):
    proc = _run(tmp_path, "missing", "transformers", "language",
                "--model", "graph", "--set", f"data.graphs={ecoli_graphs}", "--set", "model.options.networks=[e_coli_core]",
                "--max-epochs", "1", "--output-dir", str(tmp_path / "g"), "--set", "trainer.logger=none",
                "--set", "trainer.plots=false", "--set", "trainer.progress_bar=false")
    assert "BROKEN-RC 2" in proc.stdout and "OTHER-RC 0" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    line = _error_line(proc)
    assert "DependencyError" in line and "astrobio[llm]" in line and "transformers" in line


def test_a_broken_transformers_is_one_line_naming_the_extra(tmp_path):
    # a broken transformers also breaks Lightning (torchmetrics imports an installed transformers),
    # so no model can train in that environment; the CLI still says so in one line with the fix
    proc = _run(tmp_path, "broken", "transformers", "language")
    assert "BROKEN-RC 2" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    line = _error_line(proc)
    assert "DependencyError" in line and "astrobio[llm]" in line and "transformers" in line


class _Block:
    """An import hook (in this process) making `names` missing or broken; modules already
    imported are hidden for the test's duration (monkeypatch restores them)."""

    def __init__(self, monkeypatch, names, how):
        import importlib.abc

        class Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path, target=None):
                if fullname.split(".")[0] in names:
                    if how == "missing":
                        raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
                    raise ImportError(f"{fullname}: undefined symbol (simulated broken install)", name=fullname)
                return None

        for mod in [m for m in sys.modules if m.split(".")[0] in names]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])


@pytest.mark.parametrize("how, names, model, extra", [
    ("missing", "peft", "language", "astrobio[llm]"),
    ("broken", "peft", "language", "astrobio[llm]"),
    ("missing", "sklearn", "language", "astrobio[llm]"),
    ("broken", "torch_geometric", "graph", "astrobio[graph]"),
])
def test_a_missing_or_broken_library_disables_only_its_model(monkeypatch, how, names, model, extra):
    from astrobio import DependencyError
    from astrobio.train import TrainConfig
    from astrobio.train.tasks import get_task

    _Block(monkeypatch, {names}, how)
    with pytest.raises(DependencyError) as e:
        get_task(model).open(TrainConfig.for_model(model))  # before any data is read
    message = str(e.value)
    assert extra in message and names in message and "\n" not in message
    for other in ("datacube", "multimodal", *({"graph", "language"} - {model})):
        assert get_task(other).name == other  # the other tasks still import


def test_importing_astrobio_loads_no_optional_library(tmp_path):
    # (Lightning itself imports an installed transformers via torchmetrics; astrobio's own modules do not)
    code = ("import sys, astrobio, astrobio.models, astrobio.train, astrobio.train.tasks, astrobio.datasets.reactions; "
            "import astrobio.models.graph, astrobio.models.language, astrobio.models.multimodal; "
            "from astrobio.models import DatacubeEmulator, FusionModel, GraphVAE; "
            "print(sorted(m for m in ('torch_geometric', 'transformers', 'peft', 'sklearn', 'lightning') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(PACKAGE_ROOT), "PATH": "/usr/bin:/bin",
                                                             "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
