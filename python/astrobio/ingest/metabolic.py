"""Metabolic networks (SBML .xml/.xml.gz, COBRA JSON) parsed into `MetabolicGraph`s for the
graph store (`astrobio.stores.graph`, format "astrobio.graphs"), read through cobra by path
(never `cobra.io.load_model`, which goes online). cobra is imported on first use: only this
ingest needs it.

One subgroup per model, everything in sorted-id order so the same model gives the same bytes:

- metabolites (nodes): ids, names, compartment, formula, and a float32 feature matrix `x`
  [N, F] with columns `FEATURES` (element counts C, H, N, O, P, S; `other_atoms`, the count
  of every other element including R/X groups; `charge`; `formula_known`) followed by one
  one-hot column per compartment ("comp:<id>", compartments sorted). An unknown formula or
  charge is NaN (with `formula_known` = 0), never a made-up 0 (cobra reads an SBML species
  without fbc:charge as charge 0; those are found in the file and set to NaN).
- `incidence_index` [2, K] int64 (metabolite row, reaction row) with `stoichiometry` [K]
  float64 (negative = consumed): the exact bipartite metabolite-reaction graph.
- `edge_index` [2, E] int64, the metabolite-metabolite projection for GNNs: two metabolites
  are linked when they take part in the same reaction, stored in both directions (PyG's
  undirected convention), sorted, no self loops; `edge_weight` [E] counts the reactions
  linking the pair. Two documented exclusions keep the projection from collapsing into a few
  hubs: currency metabolites (`CURRENCY`, matched on the BiGG id without its compartment
  suffix) and biomass pseudo-reactions (the objective, or "biomass" in the id). They stay in
  the nodes and in the incidence graph.
- reactions: ids, names, subsystem ("" when the model has none; a later task predicts the
  subsystem from the name), `bounds` [R, 2] float64 and `boundary` [R] bool (exchange, demand
  and sink reactions).
"""

from __future__ import annotations

import gzip
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from ..errors import ConfigError, DataNotFoundError, DependencyError, IntegrityError, first_line
from ..stores import _group, graph
from ..stores._group import check_name
from ..stores.graph import MetabolicGraph, write_graphs
from ..stores._remote import store_location
from .formats import IngestContext, SourceFormat, SourcePath, StrictRequest, pairs
from ._provenance import code_version, command_line, inputs_digest, sources_record, tool_versions, up_to_date

__all__ = ["CURRENCY", "ELEMENTS", "FEATURES", "FORMAT", "MetabolicRequest", "ingest_metabolic", "load_model"]

ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]

log = logging.getLogger(__name__)

ELEMENTS = ("C", "H", "N", "O", "P", "S")
FEATURES = (*ELEMENTS, "other_atoms", "charge", "formula_known")
# Cofactors and inorganic carriers present in most reactions (BiGG ids without compartment).
CURRENCY = frozenset({
    "h", "h2o", "atp", "adp", "amp", "pi", "ppi", "nad", "nadh", "nadp", "nadph", "co2", "o2",
    "nh4", "coa", "fad", "fadh2", "q8", "q8h2", "mqn8", "mql8", "h2o2",
})
_SUFFIX = re.compile(r"_[A-Za-z0-9]{1,3}$")


def _cobra() -> Any:
    try:
        import cobra
    except ImportError as e:  # pragma: no cover - cobra is a dependency of this ingest
        raise DependencyError(f"metabolic ingest needs cobra ({e}); install with: pip install cobra") from e
    return cobra


def load_model(path: str | Path) -> Any:
    """A cobra Model read from a local SBML (.xml, .xml.gz, .sbml) or COBRA JSON file."""
    cobra = _cobra()
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError("metabolic model file not found", path=str(path), hint="Pass the path of an SBML or COBRA JSON file")
    name = path.name.lower()
    try:
        if name.endswith(".json"):
            return cobra.io.load_json_model(str(path))
        if name.endswith((".xml", ".xml.gz", ".sbml", ".sbml.gz")):
            return cobra.io.read_sbml_model(str(path))
    except Exception as e:  # cobra and libsbml raise many types for an unreadable model
        raise IntegrityError(f"cannot read the metabolic model ({first_line(e)})", path=str(path)) from None
    raise ConfigError(f"{path}: unknown model format; use SBML (.xml, .xml.gz) or COBRA JSON (.json)")


def _sbml_uncharged(path: Path) -> set[str]:
    """Ids (as cobra names them) of SBML species without a charge in an fbc document.

    cobra reads a missing fbc:charge as 0 (libsbml's default), which would be a made-up
    value: the carveme archaea universe lacks 1125 charges, iYS1720 16. Read the species list
    once more with ElementTree to tell "0" from "not given".
    """
    sbml = _cobra().io.sbml
    to_cobra = sbml.F_REPLACE[sbml.F_SPECIE]
    fbc, missing = False, set()
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        for event, x in ET.iterparse(f, events=("start-ns", "end")):
            if event == "start-ns":
                fbc = fbc or "/fbc/" in x[1]
            elif x.tag.endswith("}species"):
                if not any(k.endswith("}charge") or k == "charge" for k in x.attrib):
                    missing.add(to_cobra(x.get("id", "")))
            elif x.tag.endswith("}listOfSpecies"):
                break
    # Without fbc, cobra leaves an absent charge as None already (or takes it from notes).
    return missing if fbc else set()


def _base_id(mid: str) -> str:
    return _SUFFIX.sub("", mid)


def _features(mets: list[Any], compartments: list[str], uncharged: Collection[str]) -> np.ndarray:
    x = np.zeros((len(mets), len(FEATURES) + len(compartments)), np.float32)
    col = {c: len(FEATURES) + i for i, c in enumerate(compartments)}
    for i, m in enumerate(mets):
        elements = None
        if m.formula:
            try:
                elements = m.elements
            except (ValueError, TypeError):  # an unparsable formula is an unknown formula
                elements = None
        if elements:
            x[i, : len(ELEMENTS)] = [elements.get(e, 0) for e in ELEMENTS]
            x[i, len(ELEMENTS)] = sum(v for k, v in elements.items() if k not in ELEMENTS)
            x[i, FEATURES.index("formula_known")] = 1.0
        else:
            x[i, : len(ELEMENTS) + 1] = np.nan
        x[i, FEATURES.index("charge")] = np.nan if m.charge is None or m.id in uncharged else float(m.charge)
        x[i, col[m.compartment]] = 1.0
    return x


def _graph(name: str, model: Any, currency: Collection[str], uncharged: Collection[str] = frozenset()) -> tuple[MetabolicGraph, dict[str, Any]]:
    """Arrays and manifest counts of one model."""
    mets = sorted(model.metabolites, key=lambda m: m.id)
    rxns = sorted(model.reactions, key=lambda r: r.id)
    m_index = {m.id: i for i, m in enumerate(mets)}
    compartments = sorted({m.compartment or "" for m in mets})
    x = _features(mets, compartments, uncharged)
    objective = {r.id for r in model.reactions if r.objective_coefficient}
    boundary_ids = {r.id for r in model.boundary}
    is_currency = np.array([_base_id(m.id) in currency for m in mets])
    inc_m, inc_r, stoich = [], [], []
    pairs: Counter[tuple[int, int]] = Counter()
    excluded_rxns = []
    for j, r in enumerate(rxns):
        items = sorted((m_index[m.id], float(c)) for m, c in r.metabolites.items())
        for i, c in items:
            inc_m.append(i)
            inc_r.append(j)
            stoich.append(c)
        if r.id in objective or "biomass" in r.id.lower():
            excluded_rxns.append(r.id)
            continue
        nodes = [i for i, _ in items if not is_currency[i]]
        for a in range(len(nodes)):
            for b in range(a + 1, len(nodes)):
                pairs[(nodes[a], nodes[b])] += 1
    und = sorted(pairs)
    both = sorted([(a, b, pairs[(a, b)]) for a, b in und] + [(b, a, pairs[(a, b)]) for a, b in und])
    edge_index = np.array([[a for a, _, _ in both], [b for _, b, _ in both]], np.int64).reshape(2, -1)
    edge_weight = np.array([w for _, _, w in both], np.int64)
    g = MetabolicGraph(
        name=name,
        metabolite_ids=[m.id for m in mets],
        metabolite_names=[m.name or "" for m in mets],
        metabolite_compartments=[m.compartment or "" for m in mets],
        metabolite_formulas=[m.formula or "" for m in mets],
        x=x,
        feature_names=[*FEATURES, *(f"comp:{c}" for c in compartments)],
        edge_index=edge_index,
        edge_weight=edge_weight,
        incidence_index=np.array([inc_m, inc_r], np.int64).reshape(2, -1),
        stoichiometry=np.array(stoich, np.float64),
        reaction_ids=[r.id for r in rxns],
        reaction_names=[r.name or "" for r in rxns],
        subsystems=[(r.subsystem or "").strip() for r in rxns],
        bounds=np.array([[r.lower_bound, r.upper_bound] for r in rxns], np.float64).reshape(-1, 2),
        boundary=np.array([r.id in boundary_ids for r in rxns], bool),
    )
    subsys = Counter(s for s in g.subsystems if s)
    info = {
        "model_id": model.id or "",
        "model_name": model.name or "",
        "counts": {
            "metabolites": g.num_nodes,
            "reactions": g.num_reactions,
            "genes": len(model.genes),
            "edges_undirected": len(und),
            "edge_index_columns": int(edge_index.shape[1]),
            "incidence_entries": int(g.stoichiometry.size),
            "boundary_reactions": int(g.boundary.sum()),
            "reactions_with_subsystem": int(sum(subsys.values())),
            "subsystems": len(subsys),
            "metabolites_without_formula": int((x[:, FEATURES.index("formula_known")] == 0).sum()),
            "metabolites_without_charge": int(np.isnan(x[:, FEATURES.index("charge")]).sum()),
            "currency_metabolites": int(is_currency.sum()),
        },
        "compartments": {c: str(model.compartments.get(c, "")) for c in compartments},
        "feature_names": g.feature_names,
        "subsystem_counts": dict(sorted(subsys.items())),
        "projection_excluded_reactions": excluded_rxns,
    }
    return g, info


def ingest_metabolic(
    models: Mapping[str, str | Path],
    out: str | Path,
    *,
    currency: Collection[str] = CURRENCY,
) -> Path | str:
    """Ingest metabolic models (name -> SBML/JSON path) into the graph store at `out`.

    `currency` lists BiGG base ids left out of the metabolite-metabolite projection (pass ()
    to keep every metabolite). Re-running on unchanged inputs leaves the store untouched.
    Raises DataNotFoundError for a missing file, IntegrityError for an unreadable model.
    """
    if not models:
        raise ConfigError("no metabolic models given")
    out = store_location(out)
    paths = {check_name(k, "model name"): Path(v) for k, v in sorted(models.items())}
    for p in paths.values():
        if not p.is_file():
            raise DataNotFoundError("metabolic model file not found", path=str(p), hint="Pass the path of an SBML or COBRA JSON file")
    sources = sources_record(paths.values())
    code = code_version(__file__, graph.__file__, _group.__file__)
    options = {"models": {k: s["digest"] for k, s in zip(paths, sources)}, "currency": sorted(currency)}
    digest = inputs_digest(sources, options, code)
    if up_to_date(out, digest):
        log.info("%s is up to date with its inputs; nothing to do", out)
        return out
    entries: dict[str, Any] = {}
    timings: dict[str, float] = {}
    graphs = []
    _cobra()  # import once up front so read times measure reading, not importing
    for name, path in paths.items():
        t0 = time.perf_counter()
        model = load_model(path)
        uncharged = set() if path.name.lower().endswith(".json") else _sbml_uncharged(path)
        timings[name] = round(time.perf_counter() - t0, 3)
        g, info = _graph(name, model, frozenset(currency), uncharged)
        log.info("%s: %d metabolites, %d reactions, %d edges (read in %.1f s)", name, g.num_nodes, g.num_reactions,
                 info["counts"]["edges_undirected"], timings[name])
        graphs.append(g)
        entries[name] = info
    described = {
        "models": entries,
        "features": {
            "elements": list(ELEMENTS),
            "other_atoms": "count of atoms of every other element in the formula (metals, R/X groups)",
            "charge": "formal charge (NaN when the model does not give it)",
            "formula_known": "1 when the formula parsed, else 0 (element counts NaN)",
            "comp:<id>": "one-hot compartment, one column per compartment of the model, sorted",
        },
        "graph": {
            "edge_index": "metabolite-metabolite, both directions, sorted, no self loops",
            "edge_weight": "number of reactions linking the pair",
            "projection_excludes": {"currency_metabolites": sorted(currency), "reactions": "objective or 'biomass' in the id"},
            "incidence_index": "(metabolite row, reaction row), sorted by reaction then metabolite",
            "stoichiometry": "coefficient of the metabolite in the reaction (negative: consumed)",
        },
    }
    provenance = {
        "kind": "curated model",
        "sources": sources,
        "command": command_line(),
        "inputs_digest": digest,
        "models": {name: str(path) for name, path in paths.items()},
        "read_seconds": timings,
        "tools": {"astrobio": code, **tool_versions("cobra", "python-libsbml", "numpy", "zarr")},
    }
    return write_graphs(out, graphs, described=described, provenance=provenance)


class MetabolicRequest(StrictRequest):
    """Metabolic models: name -> SBML (.xml, .xml.gz) or COBRA JSON file."""

    models: dict[ModelName, SourcePath] = Field(min_length=1, max_length=64, description="model name -> file")


def _ingest_request(request: MetabolicRequest, out: Path | str, context: IngestContext) -> Path | str:
    return ingest_metabolic({k: Path(v) for k, v in request.models.items()}, out)


def _add_arguments(p: Any) -> None:
    p.add_argument("models", nargs="+", metavar="NAME=PATH", help="a model name and its SBML or COBRA JSON file")


FORMAT = SourceFormat("metabolic", kind="graph", request=MetabolicRequest, ingest=_ingest_request, add_arguments=_add_arguments,
                      to_values=lambda args: {"models": pairs(args.models, "a model")},
                      help="metabolic models (SBML or COBRA JSON) -> a graph store",
                      examples=("astrobio ingest metabolic --out nets.zarr iJO1366=iJO1366.xml.gz",))
