"""The task registry (astrobio.train.tasks): built-in tasks imported on first use, tasks added
with `register_task` or found through the `astrobio.tasks` entry point group."""

from __future__ import annotations

import importlib.metadata

import pytest

from astrobio import ConfigError
from astrobio.train.tasks import ENTRY_POINT_GROUP, get_task, register_task, task_names, unregister_task


class EntryPointTask:
    """Just enough of a task for the registry (training it is test_add_a_model's job)."""

    name = "epmodel"


def test_built_in_tasks_are_fresh_objects_with_their_options():
    assert {"datacube", "detector", "graph", "language", "multimodal"} <= set(task_names())
    for name in ("datacube", "detector", "graph", "language", "multimodal"):
        a, b = get_task(name), get_task(name)
        assert a.name == name and a is not b  # no state shared between runs
        a.options_type().validate()  # the defaults are valid
        assert set(a.defaults) <= {"data", "optim", "physics", "trainer"}
    with pytest.raises(ConfigError, match="unknown model 'nope'; available: datacube, detector, graph, language, multimodal"):
        get_task("nope")


def test_an_entry_point_adds_a_model(monkeypatch):
    ep = importlib.metadata.EntryPoint("epmodel", f"{__name__}:EntryPointTask", ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [ep] if group == ENTRY_POINT_GROUP else [])
    try:
        assert "epmodel" in task_names()
        assert isinstance(get_task("epmodel"), EntryPointTask)
    finally:
        unregister_task("epmodel")


def test_registration_is_checked():
    with pytest.raises(ConfigError, match="a model name must be"):
        register_task("two words", EntryPointTask)
    register_task("other", EntryPointTask)
    try:
        with pytest.raises(ConfigError, match="registered as 'other' calls itself 'epmodel'"):
            get_task("other")
    finally:
        unregister_task("other")
