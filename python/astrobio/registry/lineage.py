"""Lineage: train on a registered version (`--data name@vN`), record which version a run
used (summary, checkpoint, registry), and describe it to MLflow as a dataset input.

The runner (`astrobio.train.location`, `trainer`) calls (see docs/registry.md, "Lineage"):
  info = load_info("climate@v3")                          # refuses a changed or missing store
  lineage_record("climate@v3", info["digest"], info["uri"])   # what summary and checkpoint record
  record_run("climate@v3", run_dir, summary)              # after the summary is written
  log_mlflow_dataset(client, run_id, ref, digest, uri, kind, summary)   # with MLflow tracking
`resolve_data_ref` is the same check for callers that want (uri, digest, kind).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..errors import AstrobioError
from . import is_data_ref
from .core import Registry, open_registry, parse_ref

__all__ = ["load_info", "resolve_data_ref", "lineage_record", "record_run", "mlflow_dataset", "log_mlflow_dataset", "is_data_ref"]

log = logging.getLogger(__name__)


def load_info(ref: str, registry: Registry | None = None) -> dict[str, Any]:
    """{ref, uri, digest, kind, summary, splits} of a ready version, after checking its store
    still is the one registered (IntegrityError / DataNotFoundError otherwise)."""
    return (registry or open_registry()).load(ref)


def resolve_data_ref(ref: str, registry: Registry | None = None) -> tuple[str, str, str]:
    """(uri, digest, kind) of a ready version, after checking its store still is the one
    registered (IntegrityError / DataNotFoundError otherwise: training refuses it)."""
    info = load_info(ref, registry)
    return info["uri"], info["digest"], info["kind"]


def lineage_record(ref: str, digest: str, uri: str) -> dict[str, str]:
    """What a run's summary and checkpoint meta store under "data": {"ref", "digest", "uri"}."""
    name, number = parse_ref(ref)
    return {"ref": f"{name}@v{number}" if number is not None else name, "digest": digest, "uri": uri}


def record_run(ref: str, run_dir: str, summary: dict[str, Any] | None = None, registry: Registry | None = None) -> None:
    """Add the run to the version's lineage (`astrobio registry show name@vN` lists it).
    Metrics recorded: the summary's monitored best score and scalar top-level numbers."""
    summary = summary or {}
    metrics = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if summary.get("monitor"):
        metrics["monitor"] = summary["monitor"]
    split = summary.get("held_out_split")
    held = summary.get("evaluation", {}).get(split) if isinstance(summary.get("evaluation"), dict) and split else None
    if isinstance(held, dict):  # the run's result on its held-out split, for the dataset pages
        metrics["held_out_split"] = str(split)
        metrics["held_out"] = _scalars(held)
    (registry or open_registry()).record_run(ref, str(run_dir), str(summary.get("model", "")), metrics)


def _scalars(tree: dict[str, Any], prefix: str = "", limit: int = 48) -> dict[str, float]:
    """Dotted keys -> numbers of a nested result (e.g. {"model.rmse": 0.57, "skill": 0.05})."""
    out: dict[str, float] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_scalars(v, key + ".", limit - len(out)))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):  # JSON has no NaN
            out[key] = v
        if len(out) >= limit:
            break
    return dict(list(out.items())[:limit])


def mlflow_dataset(ref: str, digest: str, uri: str, kind: str, summary: dict[str, Any] | None = None) -> Any:
    """An MLflow dataset describing the version (name, digest, source, schema); no data is
    loaded into MLflow."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types import ColSpec, Schema

    summary = summary or {}
    cols = summary.get("variables") or summary.get("columns") or list(summary.get("models", {}))
    schema = Schema([ColSpec("double", str(c)) for c in cols]) if cols else None
    source = _source(uri)
    return MetaDataset(source=source, name=ref, digest=digest.removeprefix("sha256:")[:36], schema=schema)


def _source(uri: str) -> Any:
    """MLflow's own source class for the URI's scheme (local path, s3://, http(s)://)."""
    from mlflow.data import sources

    if uri.startswith(("http://", "https://")):
        return sources.HTTPDatasetSource(uri)
    if uri.startswith("s3://"):
        return sources.S3ArtifactDatasetSource(uri)
    return sources.LocalArtifactDatasetSource(uri)


def log_mlflow_dataset(client: Any, run_id: str, ref: str, digest: str, uri: str, kind: str,
                       summary: dict[str, Any] | None = None) -> None:
    """Log the version as a training dataset input of MLflow run `run_id` (an
    `mlflow.MlflowClient`, e.g. Lightning's `MLFlowLogger.experiment`), so runs are searchable
    by dataset. A tracking failure is logged, never fatal to the run."""
    try:
        from mlflow.entities import DatasetInput, InputTag

        ds = mlflow_dataset(ref, digest, uri, kind, summary)
        client.log_inputs(run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "training")])])
    except (ImportError, AstrobioError, OSError, ValueError) as e:
        log.warning("could not log dataset %s to MLflow: %s", ref, e)
