"""The one split rule of run-split stores (the cube): a split maps "train", "val" and "test"
to lists of run ids of the store, and a run is in at most one split (no leakage between them).

The writer (`cube_writer`), the manifest check at open (`cube`), a run's own `data.split`
(`train.tasks.datacube.data`) and the quality report's leakage expectation (`cube_kind`) all
apply it through this module; each only chooses the exception and the message prefix.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["SPLITS", "split_problem", "complete_split", "runs_in_two_splits"]

SPLITS = ("train", "val", "test")


def split_problem(split: Any, run_ids: Collection[str]) -> str | None:
    """None when `split` follows the rule for a store holding `run_ids`; else one line saying
    what is wrong first (an unknown split name, a value that is not a list of run ids, a run
    the store does not hold, a run in two splits)."""
    if not isinstance(split, Mapping):
        return f"split must map train/val/test to run ids, got {type(split).__name__}"
    unknown = [name for name in split if name not in SPLITS]
    if unknown:
        return f"unknown split {unknown[0]!r} (splits are train, val and test)"
    ids = set(run_ids)
    seen: dict[str, str] = {}
    for name, runs in split.items():
        if not isinstance(runs, (list, tuple)) or not all(isinstance(r, str) for r in runs):
            return f"split {name!r} must be a list of run ids"
        for r in runs:
            if r not in ids:
                return f"split {name!r} names run {r!r}, which is not in the store"
            if r in seen:
                return f"run {r!r} is in both the {seen[r]!r} and {name!r} splits"
            seen[r] = name
    return None


def complete_split(split: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every split name present (empty when `split` leaves it out), in `SPLITS` order."""
    return {name: list(split.get(name) or []) for name in SPLITS}


def runs_in_two_splits(split: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every run the split names twice, with the two splits (for the quality report, which
    lists them all rather than stopping at the first)."""
    seen: dict[str, str] = {}
    both = []
    for name, runs in split.items():
        for r in runs:
            if r in seen:
                both.append({"run": r, "splits": [seen[r], name]})
            seen[r] = name
    return both
