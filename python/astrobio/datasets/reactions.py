"""The reaction-name -> subsystem (pathway) text task, read from the default dataset's metabolic
graph store (`metabolic.zarr`, built by `astrobio datasets build default --parts metabolic`).

Rules, applied in this order (each documented because each changes the metric):

1. Examples: every reaction of the chosen models with a non-empty name and subsystem. In the
   default data only iJO1366 carries subsystems (2251 labelled reactions); iYS1720, e_coli_core
   and the archaea universe have none, so they add nothing.
2. Unlabelled: `UNLABELLED` subsystems ("Unassigned") say "no pathway" and are dropped.
3. Dedupe: names are normalized (`normalize_name`: case-folded, whitespace collapsed) and each
   distinct name becomes ONE example, so the same text can never sit in two splits (iJO1366 has
   2251 labelled reactions but 2154 distinct names: transport reactions repeat across
   compartments). A name whose reactions disagree on the subsystem (4 in iJO1366, e.g.
   "phosphofructokinase") is ambiguous and dropped.
4. Rare classes: a subsystem with fewer than `min_count` distinct names is merged into `OTHER`
   (`rare="other"`) or dropped (`rare="drop"`); `OTHER` itself is kept only if it then reaches
   `min_count` names, else its names are dropped too.
5. Split: stratified by class and deterministic. For each class (sorted), its names are sorted and
   permuted with a numpy Generator seeded with `seed` (one generator for the whole split, classes in
   sorted order); the first round(n * test) go to test, the next round(n * val) to val (at least
   one each), the rest to train. Same store + same options -> the same split on every machine.

Near-duplicate names (the same template with another acyl chain, "(n-C14:0)" vs "(n-C16:0)")
do fall on both sides of the split; they are different reactions, but they make the task easier
than classifying truly novel reaction names (see docs/language.md).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError, DataNotFoundError
from ..stores.location import store_location
from ..stores.splits import SPLITS
from .default import part_path

__all__ = ["OTHER", "SPLITS", "UNLABELLED", "ReactionSubsystems", "load_reaction_subsystems", "normalize_name",
           "split_stratified"]

OTHER = "other"
UNLABELLED = frozenset({"unassigned"})
BUILD_HINT = "Build it with `astrobio datasets build default --parts metabolic`"


def normalize_name(name: str) -> str:
    """The dedupe key of a reaction name: case-folded, whitespace collapsed."""
    return " ".join(name.casefold().split())


@dataclass(frozen=True)
class ReactionSubsystems:
    """Distinct reaction names with their subsystem class and a train/val/test split.

    `texts[i]` is the name as written in the model (first occurrence in sorted model and reaction
    id order), `labels[i]` its class index into `classes` (sorted; `OTHER` included when present),
    `splits[name]` the sorted example indices of each split. `info` records the counts behind
    every rule (for reports and manifests).
    """

    texts: list[str]
    labels: np.ndarray  # [N] int64
    classes: list[str]
    splits: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def texts_of(self, split: str) -> list[str]:
        """The names of one split, in index order."""
        return [self.texts[i] for i in self.indices(split)]

    def labels_of(self, split: str) -> np.ndarray:
        return self.labels[self.indices(split)]

    def indices(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r}; splits: {', '.join(self.splits)}")
        return self.splits[split]

    def subset(self, per_split: dict[str, int]) -> "ReactionSubsystems":
        """The first `per_split[name]` examples of each named split (for quick runs and tests);
        classes and labels are unchanged."""
        splits = {k: v[: per_split.get(k, len(v))] for k, v in self.splits.items()}
        return ReactionSubsystems(self.texts, self.labels, self.classes, splits, {**self.info, "subset": dict(per_split)})


def split_stratified(labels: np.ndarray, *, val: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Deterministic stratified split of example indices (rule 5 of the module docstring). Every
    class needs at least 3 examples, so each split gets at least one."""
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise ConfigError(f"split fractions val={val}, test={test} must be in (0, 1) with val + test < 1")
    rng = np.random.default_rng(seed)  # real-data-ok: seeded permutation for the split, not data
    out: dict[str, list[int]] = {k: [] for k in SPLITS}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)  # sorted, so the permutation alone decides
        if len(members) < 3:
            raise ConfigError(f"class {int(c)} has {len(members)} examples; a stratified split needs at least 3")
        members = members[rng.permutation(len(members))]
        n_test = max(1, int(round(len(members) * test)))
        n_val = max(1, int(round(len(members) * val)))
        if n_test + n_val >= len(members):
            n_test, n_val = 1, 1
        out["test"] += members[:n_test].tolist()
        out["val"] += members[n_test : n_test + n_val].tolist()
        out["train"] += members[n_test + n_val :].tolist()
    return {k: np.array(sorted(v), np.int64) for k, v in out.items()}


def _graph_store(path: str | Path | None) -> str | Path:
    return store_location(path) if path is not None else part_path("metabolic")


def load_reaction_subsystems(
    path: str | Path | None = None,
    *,
    models: Sequence[str] | None = None,
    min_count: int = 10,
    rare: Literal["other", "drop"] = "other",
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
) -> ReactionSubsystems:
    """The reaction-name -> subsystem examples and split from the metabolic graph store at `path`
    (default: the default dataset's `metabolic.zarr`, which must be built).

    `models`: which networks to read (default: all; those without subsystems add nothing).
    `min_count`, `rare`, `val`, `test`, `seed`: rules 4 and 5 of the module docstring.
    Raises DataNotFoundError (with the build command) when the store is missing or holds no
    labelled reaction, ConfigError for bad options, IntegrityError for a corrupt store.
    """
    from ..stores.graph import open_graphs

    if min_count < 3:
        raise ConfigError(f"min_count must be >= 3 (each class needs a train, val and test example), got {min_count}")
    if rare not in ("other", "drop"):
        raise ConfigError(f"rare must be 'other' or 'drop', got {rare!r}")
    root = _graph_store(path)
    if isinstance(root, Path) and not (root / "zarr.json").is_file():
        raise DataNotFoundError("no metabolic graph store", path=str(root), hint=BUILD_HINT)
    graphs = open_graphs(root)  # an s3:// URL: open_graphs says what is missing
    chosen = sorted(graphs) if models is None else list(models)
    missing = [m for m in chosen if m not in graphs]
    if missing:
        raise ConfigError(f"models {missing} are not in {root}; it holds {', '.join(sorted(graphs))}")

    by_name: dict[str, list[str]] = defaultdict(list)  # normalized name -> subsystems of its reactions
    first_text: dict[str, str] = {}
    reactions_per_model: dict[str, int] = {}
    n_reactions = n_unlabelled = 0
    for m in chosen:
        g = graphs[m]
        n = 0
        for name, sub in zip(g.reaction_names, g.subsystems):
            if not name.strip() or not sub.strip():
                continue
            n_reactions += 1
            if sub.strip().casefold() in UNLABELLED:
                n_unlabelled += 1
                continue
            key = normalize_name(name)
            by_name[key].append(sub.strip())
            first_text.setdefault(key, name.strip())
            n += 1
        reactions_per_model[m] = n
    if not by_name:
        raise DataNotFoundError(f"no reaction with a name and a subsystem in models {chosen}", path=str(root),
                                hint="iJO1366 carries subsystems; " + BUILD_HINT)
    ambiguous = sorted(k for k, subs in by_name.items() if len(set(subs)) > 1)
    label_of = {k: subs[0] for k, subs in by_name.items() if len(set(subs)) == 1}

    counts = Counter(label_of.values())
    rare_classes = sorted(c for c, n in counts.items() if n < min_count)
    if rare == "other":
        label_of = {k: (OTHER if s in rare_classes else s) for k, s in label_of.items()}
        if 0 < sum(1 for s in label_of.values() if s == OTHER) < min_count:
            label_of = {k: s for k, s in label_of.items() if s != OTHER}
    else:
        label_of = {k: s for k, s in label_of.items() if s not in rare_classes}
    classes = sorted(set(label_of.values()))
    if len(classes) < 2:
        raise DataNotFoundError(f"fewer than 2 subsystems with >= {min_count} distinct names", path=str(root),
                                hint="Lower min_count, or " + BUILD_HINT)
    keys = sorted(label_of)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[label_of[k]] for k in keys], np.int64)
    splits = split_stratified(labels, val=val, test=test, seed=seed)
    info = {
        "store": str(root),
        "models": chosen,
        "labelled_reactions": n_reactions,
        "labelled_reactions_per_model": reactions_per_model,
        "unlabelled_dropped": n_unlabelled,
        "distinct_names": len(by_name),
        "ambiguous_names_dropped": ambiguous,
        "min_count": min_count,
        "rare": rare,
        "rare_classes": rare_classes,
        "seed": seed,
        "fractions": {"val": val, "test": test},
        "split_sizes": {k: int(len(v)) for k, v in splits.items()},
        "class_counts": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
    }
    return ReactionSubsystems([first_text[k] for k in keys], labels, classes, splits, info)
