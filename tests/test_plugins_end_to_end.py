"""A new store kind, a new source format and a new model, added from this module alone through
the public registries (no edit anywhere in astrobio), then used end to end: `astrobio ingest
<format>` (the CLI, in-process), `astrobio validate`, the registry (register, quality report),
the REST collect of a real uvicorn server (which finds the plug-ins through entry points), and
`astrobio.train` on the registered version.

The kind and the format are the recipes of docs/add-a-store-kind.md and
docs/add-a-source-format.md, extracted from the docs' code blocks: the recipes are tried here.
The data is real: the exoplanet.eu catalogue (spright's copy, a default dataset source).

Also: the registry, `astrobio validate`, the service and the runner compare no value against a
kind or a format name (an AST check of their source).
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import astrobio
from astrobio.cli import main as cli_main
from astrobio.ingest.formats import format_names, get_format, unregister_format
from astrobio.stores.kinds import get_kind, kind_names, unregister_kind
from astrobio.train import Built, BuildContext, Evaluation, TrainConfig, register_task, unregister_task
from astrobio.train.optim import adamw_warmup_cosine, decay_groups, optimizer_steps
from registry_fixtures import Backend, backend, real_sources, start_server, wait_job  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "astrobio"
RECIPES = {"frame_kind": ROOT / "docs" / "add-a-store-kind.md", "eu_orbits_format": ROOT / "docs" / "add-a-source-format.md"}
ENTRY_POINTS = """[astrobio.store_kinds]
frame = frame_kind:KIND

[astrobio.source_formats]
eu-orbits = eu_orbits_format:FORMAT
"""


def recipe(doc: Path, module: str) -> str:
    """The code block of `doc` that starts with `# recipe: <module>.py`."""
    for block in re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S):
        if block.startswith(f"# recipe: {module}.py"):
            return block
    raise AssertionError(f"{doc} has no recipe block for {module}.py")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The recipes as an installed distribution: two modules and their entry points on sys.path
    (so the server subprocess, whose PYTHONPATH is this sys.path, finds them too)."""
    site = tmp_path / "site"
    site.mkdir()
    for module, doc in RECIPES.items():
        (site / f"{module}.py").write_text(recipe(doc, module))
    dist = site / "astrobio_plugin_recipes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: astrobio-plugin-recipes\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    unregister_format("eu-orbits")
    unregister_kind("frame")
    unregister_task("kepler")
    for module in RECIPES:
        sys.modules.pop(module, None)


# ------------------------------------------------------------------ the new model, a task on frames
@dataclass
class KeplerOptions:
    """Options of the Kepler task: none beyond the shared sections."""

    def validate(self) -> None:
        pass


class KeplerModule(L.LightningModule):
    def __init__(self, cfg: TrainConfig, history: Any, total_steps: int) -> None:
        super().__init__()
        self.model, self.cfg, self.history, self.total_steps = nn.Linear(2, 1), cfg, history, total_steps

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.mse_loss(self.model(x).squeeze(-1), y)
        self.history.record_step(self, loss.detach(), batch_idx, len(y))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self._sse.append(F.mse_loss(self.model(x).squeeze(-1), y, reduction="sum").detach())
        self._n += len(y)

    def on_validation_epoch_start(self) -> None:
        self._sse, self._n = [], 0

    def on_validation_epoch_end(self) -> None:
        rmse = (torch.stack(self._sse).sum() / max(1, self._n)).sqrt()
        self.log("val/rmse", rmse)
        self.history.record_epoch(self, val_loss=float(rmse) ** 2, val_rmse=float(rmse))

    def configure_optimizers(self) -> Any:
        return adamw_warmup_cosine(decay_groups(self.model.named_parameters(), 0.0), self.cfg.optim, self.total_steps)


class KeplerData(L.LightningDataModule):
    def __init__(self, x: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray], batch_size: int) -> None:
        super().__init__()
        self.x, self.y, self.splits, self.batch_size = torch.from_numpy(x), torch.from_numpy(y), splits, batch_size

    def _loader(self, split: str, shuffle: bool) -> Any:
        idx = torch.from_numpy(self.splits[split])
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(self.x[idx], self.y[idx]), batch_size=self.batch_size,
                                           shuffle=shuffle, generator=torch.Generator().manual_seed(0))

    def train_dataloader(self) -> Any:
        return self._loader("train", True)

    def val_dataloader(self) -> Any:
        return self._loader("val", False)


class KeplerTask:
    """log orbital period from log semi-major axis and log host-star mass (Kepler's third law);
    baseline: the train mean."""

    name = "kepler"
    data_kind = "frame"
    monitor = "val/rmse"
    mode = "min"
    options_type = KeplerOptions
    defaults: dict[str, Any] = {"data": {"batch_size": 64}, "optim": {"lr": 0.05}}

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        if not cfg.data.location:
            raise astrobio.ConfigError("model 'kepler' has no default data: set data.location to a frame store")
        self.frame = get_kind(self.data_kind).open(cfg.data.location)  # through the kinds' registry
        return {"rows": len(self.frame["keys"])}  # no path, no digest: the runner records them

    def build(self, cfg: TrainConfig, ctx: BuildContext) -> Built:
        names = [v["name"] for v in self.frame["manifest"]["variables"]]
        x = self.frame["x"][:, [names.index("log_a"), names.index("log_mstar")]].astype(np.float32)
        y = self.frame["x"][:, names.index("log_period")].astype(np.float32)
        self.splits = {s: np.flatnonzero(self.frame["split"] == i) for i, s in enumerate(("train", "val", "test"))}
        train = self.splits["train"]
        self.x = ((x - x[train].mean(0)) / x[train].std(0)).astype(np.float32)
        self.y = y
        per_rank = -(-len(train) // cfg.data.batch_size)
        module = KeplerModule(cfg, ctx.history, optimizer_steps(cfg, per_rank))
        return Built(KeplerData(self.x, self.y, self.splits, cfg.data.batch_size), module, per_rank, {**ctx.hardware})

    @torch.no_grad()
    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> Evaluation:
        mean = float(self.y[self.splits["train"]].mean())
        out = {}
        for split in ("val", "test"):
            idx = self.splits[split]
            pred = module.model(torch.from_numpy(self.x[idx]).to(module.device)).squeeze(-1).double().cpu().numpy()
            out[split] = {"n": int(len(idx)), "model": float(np.sqrt(np.mean((pred - self.y[idx]) ** 2))),
                          "train_mean": float(np.sqrt(np.mean((mean - self.y[idx]) ** 2)))}
        return Evaluation(held_out_split="test", metric="rmse", direction="min", model=out["test"]["model"],
                          baselines={"train_mean": out["test"]["train_mean"]}, evaluation=out)

    def table(self, summary: dict[str, Any]) -> str:
        r = summary["evaluation"]["test"]
        return f"kepler: test RMSE {r['model']:.3f} dex (train mean {r['train_mean']:.3f})"

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        r = summary["evaluation"]["test"]
        return [("test RMSE [dex]", f"{r['model']:.3f}", "train mean", f"{r['train_mean']:.3f}")]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        return {}


def kepler_config(location: str, out: Path) -> TrainConfig:
    cfg = TrainConfig.for_model("kepler")
    cfg.data.location = location
    cfg.trainer.output_dir, cfg.trainer.max_epochs, cfg.trainer.accelerator = str(out), 8, "cpu"
    cfg.trainer.logger, cfg.trainer.progress_bar, cfg.trainer.plots = "none", False, False
    return cfg


# ------------------------------------------------------------------ the test
def test_a_new_kind_format_and_model_run_end_to_end(plugins: Path, backend: Backend, tmp_path: Path, capsys) -> None:
    from astrobio.train import load_checkpoint, train

    # 1. found through the public registries (and, for other processes, the entry points)
    assert "frame" in kind_names() and "eu-orbits" in format_names()
    fmt = get_format("eu-orbits")
    assert fmt.kind == "frame" and get_kind("frame").name == "frame"
    register_task("kepler", KeplerTask)

    # 2. astrobio ingest eu-orbits: a subcommand generated from the format's request model
    source_root = tmp_path / "sources"
    csv = real_sources(source_root)["catalogue"]
    out = tmp_path / "orbits.zarr"
    assert cli_main(["ingest", "eu-orbits", "--out", str(out), "--source", str(csv), "--min-rows", "100"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert cli_main(["ingest", "eu-orbits", "--out", str(tmp_path / "x.zarr"), "--source", str(csv), "--min-rows", "0"]) == 2
    assert "eu-orbits: min_rows: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert cli_main(["validate", "--store", str(out)]) in (0, 1)  # components may be missing; the store line must be ok
    line = next(x for x in capsys.readouterr().out.splitlines() if "orbits.zarr" in x)
    assert line.split()[:3] == ["frame", "orbits.zarr", "ok"], line

    # 3. the registry records it with the kind's description and quality expectations
    reg = backend.registry()
    v = reg.register(out, "orbits-cli")
    assert (v["kind"], v["status"]) == ("frame", "ready") and v["splits"]["train"]["samples"] > 1000
    q = reg.quality("orbits-cli@v1")
    results = {r["expectation"]: r for r in q["results"]}
    assert q["success"] and results["expect_rows_in_their_rule_split"]["success"]
    assert set(q["variables"]) == {"log_period", "log_a", "log_mstar"} and q["histograms"]["log_a"]["counts"]

    # 4. collected over the REST API by a real server that found the plug-ins through entry points
    server = start_server(backend, [source_root])
    try:
        key = backend.key("write")
        schema = httpx.get(server.base + "/openapi.json", timeout=10).json()["components"]["schemas"]
        assert {"source", "min_rows", "format", "dataset"} <= set(schema["EuOrbitsCollect"]["properties"])
        post = lambda body: httpx.post(f"{server.api}/datasets/collect", json=body, headers={"X-API-Key": key}, timeout=30)  # noqa: E731
        bad = post({"format": "eu-orbits", "dataset": "orbits", "source": csv.name, "min_rows": 0})
        assert bad.status_code == 422 and "min_rows" in bad.text
        outside = post({"format": "eu-orbits", "dataset": "orbits", "source": str(ROOT / "README.md")})
        assert outside.status_code == 422 and "outside the allowed source roots" in outside.text
        r = post({"format": "eu-orbits", "dataset": "orbits", "source": csv.name})
        assert r.status_code == 202, r.text
        job = wait_job(server.api, key, r.json()["job_id"])
        assert job["state"] == "succeeded", job
        version = httpx.get(f"{server.api}/datasets/orbits/versions/1", headers={"X-API-Key": key}, timeout=10).json()
        assert (version["kind"], version["status"], version["digest"]) == ("frame", "ready", v["digest"])
    finally:
        server.stop()

    # 5. a model trains on the registered version through astrobio.train; the runner records the data
    result = train(kepler_config("orbits@v1", tmp_path / "run"))
    s = result.summary
    assert s["data"]["ref"] == "orbits@v1" and s["store_digest"] == v["digest"]
    test = s["evaluation"]["test"]
    assert test["model"] < 0.5 * test["train_mean"], test  # Kepler's third law is learned, not the mean
    meta = load_checkpoint(result.last_checkpoint)["astrobio"]["meta"]
    assert meta["store"]["kind"] == "frame" and meta["store"]["content_digest"] == v["digest"] and meta["store"]["rows"] > 1000
    assert [r["model"] for r in reg.version("orbits@v1")["runs"]] == ["kepler"]
    # a version of another kind than the task reads is refused in one line
    with pytest.raises(astrobio.ConfigError, match=r"orbits@v1 is a frame store; model 'datacube' reads cube stores"):
        cfg = TrainConfig.for_model("datacube")
        cfg.data.location = "orbits@v1"
        train(cfg)


# ------------------------------------------------------------------ no kind or format by name
BUILTIN_NAMES = {"cube", "table", "graph", "graphs", "store", "climate", "catalogue", "metabolic",
                 "astrobio.store", "astrobio.table", "astrobio.graphs"}
DISPATCHERS = [*sorted((PACKAGE / "registry").glob("*.py")), PACKAGE / "validate.py", *sorted((PACKAGE / "serve").rglob("*.py")),
               PACKAGE / "train" / "trainer.py", PACKAGE / "train" / "location.py", PACKAGE / "ingest" / "cli.py",
               PACKAGE / "ingest" / "formats.py"]


def _literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _literals(e)]
    return []


@pytest.mark.parametrize("path", DISPATCHERS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dispatchers_compare_no_value_against_a_kind_or_format_name(path: Path) -> None:
    """Every comparison (==, !=, in, match) and every dict key lookup by a literal in the registry,
    validate, the service and the runner: none names a built-in kind, format or manifest format."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            found += [(node.lineno, v) for side in (node.left, *node.comparators) for v in _literals(side) if v in BUILTIN_NAMES]
        elif isinstance(node, ast.match_case):
            found += [(node.pattern.lineno, v) for sub in ast.walk(node.pattern) for v in _literals(sub) if v in BUILTIN_NAMES]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) \
                and node.value.id in ("KINDS", "FORMATS", "FORMAT_KINDS"):
            found.append((node.lineno, node.value.id))
    assert not found, f"{path.name} names kinds or formats: {found}"
