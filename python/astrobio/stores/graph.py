"""Graph stores (format "astrobio.graphs"): metabolic networks, one subgroup per model, every
array in sorted-id order so the same model gives the same bytes. The layout (metabolites and
their feature matrix, the metabolite-reaction incidence with stoichiometry, the metabolite-
metabolite projection, reactions) is described in `astrobio.ingest.metabolic`, which parses
the models and hands `MetabolicGraph`s to `write_graphs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IntegrityError
from . import _remote
from ._group import GroupWriter, check_name, content_digest, read_array, read_manifest
from .kinds import Description, histogram, moments

__all__ = ["FORMAT", "FORMAT_VERSION", "HINT", "MetabolicGraph", "open_graphs", "open_graph_store", "read_graph_manifest", "write_graphs",
           "digest", "KIND"]

FORMAT = "astrobio.graphs"
FORMAT_VERSION = 1
HINT = (
    "Build the default dataset with `astrobio datasets build default`, "
    "or write this store with astrobio.ingest.metabolic.ingest_metabolic({NAME: MODEL_PATH}, PATH)"
)


@dataclass(frozen=True)
class MetabolicGraph:
    """One metabolic network as arrays; see `astrobio.ingest.metabolic` for the layout."""

    name: str
    metabolite_ids: list[str]
    metabolite_names: list[str]
    metabolite_compartments: list[str]
    metabolite_formulas: list[str]
    x: np.ndarray                # [N, F] float32
    feature_names: list[str]
    edge_index: np.ndarray       # [2, E] int64, metabolite-metabolite, both directions
    edge_weight: np.ndarray      # [E] int64
    incidence_index: np.ndarray  # [2, K] int64, (metabolite, reaction)
    stoichiometry: np.ndarray    # [K] float64
    reaction_ids: list[str]
    reaction_names: list[str]
    subsystems: list[str]
    bounds: np.ndarray           # [R, 2] float64
    boundary: np.ndarray         # [R] bool

    @property
    def num_nodes(self) -> int:
        return len(self.metabolite_ids)

    @property
    def num_reactions(self) -> int:
        return len(self.reaction_ids)


#: (array name in the model's subgroup, MetabolicGraph field, dimension names), in write order.
_LAYOUT: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("metabolite_id", "metabolite_ids", ("metabolite",)),
    ("metabolite_name", "metabolite_names", ("metabolite",)),
    ("metabolite_compartment", "metabolite_compartments", ("metabolite",)),
    ("metabolite_formula", "metabolite_formulas", ("metabolite",)),
    ("x", "x", ("metabolite", "feature")),
    ("edge_index", "edge_index", ("pair", "edge")),
    ("edge_weight", "edge_weight", ("edge",)),
    ("incidence_index", "incidence_index", ("pair", "entry")),
    ("stoichiometry", "stoichiometry", ("entry",)),
    ("reaction_id", "reaction_ids", ("reaction",)),
    ("reaction_name", "reaction_names", ("reaction",)),
    ("reaction_subsystem", "subsystems", ("reaction",)),
    ("bounds", "bounds", ("reaction", "bound")),
    ("boundary", "boundary", ("reaction",)),
)
_STRINGS = frozenset({"metabolite_ids", "metabolite_names", "metabolite_compartments", "metabolite_formulas",
                      "reaction_ids", "reaction_names", "subsystems"})


def digest(manifest: Mapping[str, Any]) -> str:
    """The content digest of a graph manifest (the one rule of `stores._group.content_digest`)."""
    return content_digest(manifest)


def write_graphs(out: str | Path, graphs: Sequence[MetabolicGraph], *, described: Mapping[str, Any],
                 provenance: Mapping[str, Any]) -> Path | str:
    """Write `graphs` as the graph store at `out` (a directory or an s3:// URL). `described` holds the manifest fields that
    describe the data ("models": per-model counts and feature names, "features", "graph"),
    `provenance` the build record."""
    out = _remote.store_location(out)
    with GroupWriter(out) as w:
        for g in graphs:
            check_name(g.name, "model name")
            for key, attr, dims in _LAYOUT:
                w.array(f"{g.name}/{key}", getattr(g, attr), dims)
        manifest: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": _remote.name_of(out), **described,
                                    "digests": w.digests()}
        manifest["content_digest"] = digest(manifest)
        manifest["provenance"] = dict(provenance)
        return w.commit(manifest)


def read_graph_manifest(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """The manifest of the complete graph store at `path` (a directory or an s3:// URL), its
    digests checked when `verify`."""
    return read_manifest(path, FORMAT, HINT, verify=verify, version=FORMAT_VERSION)


def open_graphs(path: str | Path, *, verify: bool = True) -> dict[str, MetabolicGraph]:
    """Every network of the graph store at `path` (a directory or an s3:// URL), by model name.

    Raises DataNotFoundError when there is no complete graph store at `path` (with the command
    that builds it) and IntegrityError when the data no longer matches its recorded digests.
    """
    return open_graph_store(path, verify=verify)[1]


def open_graph_store(path: str | Path, *, verify: bool = True) -> tuple[dict[str, Any], dict[str, MetabolicGraph]]:
    """(manifest, networks by model name) of the graph store at `path`, read from one copy of
    it (for a URL: the manifest describes exactly the bytes the networks come from)."""
    with _remote.local_view(path) as (root, label):  # a URL: one download, checked then read
        manifest = read_manifest(root, FORMAT, HINT, verify=verify, version=FORMAT_VERSION, label=label)
        out = {}
        for name, info in manifest["models"].items():
            fields: dict[str, Any] = {}
            for key, attr, _ in _LAYOUT:
                arr = read_array(root, f"{name}/{key}", label)
                fields[attr] = [str(s) for s in arr.tolist()] if attr in _STRINGS else arr
            g = MetabolicGraph(name=name, feature_names=list(info["feature_names"]), **fields)
            c = info["counts"]
            if g.num_nodes != c["metabolites"] or g.num_reactions != c["reactions"] or g.x.shape != (g.num_nodes, len(g.feature_names)):
                raise IntegrityError(f"model {name!r}: array sizes differ from the manifest's counts", path=label)
            out[name] = g
    return manifest, out


class GraphKind:
    """The graph store as a store kind: one split ("all") of its networks, statistics and
    histograms of each node feature over every network."""

    name = "graph"
    formats = (FORMAT,)

    def open(self, location: Path | str, *, verify: bool = True) -> dict[str, MetabolicGraph]:
        return open_graphs(location, verify=verify)

    def verify(self, location: Path | str) -> tuple[bool, str]:
        graphs = open_graphs(location, verify=True)
        return True, ", ".join(f"{k}: {g.num_nodes} nodes" for k, g in graphs.items())

    def check(self, location: Path | str) -> dict[str, Any]:
        open_graphs(location, verify=True)
        return {}

    def digest(self, manifest: Mapping[str, Any]) -> str:
        return digest(manifest)

    def describe(self, location: Path | str, manifest: Mapping[str, Any]) -> Description:
        models = manifest["models"]
        summary = {"format": manifest["format"], "format_version": manifest["format_version"],
                   "models": {k: v["counts"] for k, v in models.items()}}
        return Description({"all": {"runs": len(models), "samples": len(models)}}, summary)

    def _features(self, location: Path | str) -> dict[str, np.ndarray]:
        graphs = open_graphs(location, verify=False)
        names = sorted({n for g in graphs.values() for n in g.feature_names})
        return {n: np.concatenate([g.x[:, g.feature_names.index(n)] for g in graphs.values() if n in g.feature_names]).astype(np.float64)
                for n in names}

    def statistics(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        return {k: moments(v) for k, v in self._features(location).items()}

    def histograms(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, list[float]]]:
        return {k: histogram(v) for k, v in self._features(location).items()}

    def expectations(self, location: Path | str, manifest: Mapping[str, Any], scan: Mapping[str, Any]) -> list[dict[str, Any]]:
        return []


KIND = GraphKind()
