"""What MLflow records about the data a run trained on, for every task and store kind: the store
as an MLflow dataset input (name, digest, source), its description (`StoreKind.describe`: splits,
counts, the collect request) as `data/description.json`, and its quality report as
`data/quality.json`: the registry's report when the run trained on a registered version, else
the kind's own expectations computed on the store (for observations these include survey
coverage, class balance, leakage and image integrity). A tracking failure is logged, never
fatal to the run: the model is already trained.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from ..errors import AstrobioError
from ..registry.quality import summarize
from ..stores import StoreKind, get_kind, read_group_manifest
from ..stores.location import name_of, store_location
from .location import Registered

__all__ = ["data_quality", "log_data_mlflow"]

log = logging.getLogger(__name__)


def data_quality(location: Any, kind: StoreKind, manifest: dict[str, Any], registered: Registered | None) -> dict[str, Any]:
    """The quality report of the run's store (see the module docstring for which)."""
    if registered is not None:
        try:
            registry = importlib.import_module("astrobio.registry.core").open_registry()
            return {"source": f"registry report of {registered.ref}", **registry.quality(registered.ref, live=False)}
        except (ImportError, AstrobioError) as e:
            log.warning("no registry quality report for %s (%s); computing the kind's expectations", registered.ref, e)
    results = kind.expectations(location, manifest, {})
    return {"source": f"{kind.name} store kind expectations of {location}", **summarize(results), "results": results}


def log_data_mlflow(logger: Any, identity: dict[str, Any], registered: Registered | None) -> None:
    """Record the run's data in MLflow (dataset input, description, quality report)."""
    client, run_id = logger.experiment, logger.run_id
    try:
        location = store_location(str(identity["path"]))
        kind = get_kind(str(identity["kind"]))
        manifest = read_group_manifest(location)
        description = kind.describe(location, manifest)
        lineage = importlib.import_module("astrobio.registry.lineage")
        if registered is not None:
            lineage.log_mlflow_dataset(client, run_id, registered.ref, registered.digest, registered.uri, registered.kind,
                                       registered.summary)
        else:
            lineage.log_mlflow_dataset(client, run_id, name_of(location), str(identity.get("content_digest") or ""),
                                       str(location), kind.name, description.summary)
        client.log_dict(run_id, {"kind": kind.name, "path": str(location), "content_digest": identity.get("content_digest"),
                                 "splits": description.splits, "summary": description.summary}, "data/description.json")
        quality = data_quality(location, kind, manifest, registered)
        client.log_dict(run_id, quality, "data/quality.json")
        client.set_tag(run_id, "data.quality", "passed" if quality.get("success") else "failed")
    except (ImportError, AstrobioError, OSError, ValueError, KeyError) as e:
        log.warning("could not record the run's data in MLflow: %s", e)
