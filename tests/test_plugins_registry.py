"""`astrobio._plugins.Plugins`, the one registry behind store kinds, source formats and model
tasks: built-ins imported on first use and once, registered plug-ins winning over entry points,
entry points read only when a name is missing, unknown names answered in one line."""

from __future__ import annotations

import importlib.metadata
import string
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astrobio import ConfigError
from astrobio._plugins import Plugins, check_plugin_name, import_path
from astrobio.stores import kinds

GROUP = "astrobio.test_plugins"
LOADED: list[str] = []
THING = types.SimpleNamespace(name="thing")
OTHER = types.SimpleNamespace(name="other")


def _load(name: str, obj: object) -> object:
    LOADED.append(name)
    if getattr(obj, "name", None) != name:
        raise ConfigError(f"{name!r} is not called {name!r}")
    return obj


def _entry_points(monkeypatch, *eps: tuple[str, str]) -> list[str]:
    """Installed entry points of GROUP (and no other group); returns the list of groups read."""
    reads: list[str] = []
    fake = [importlib.metadata.EntryPoint(n, v, GROUP) for n, v in eps]

    def entry_points(group=None):
        reads.append(group)
        return fake if group == GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return reads


def _plugins(**kw) -> Plugins:
    LOADED.clear()
    return Plugins("widget", GROUP, {"thing": f"{__name__}:THING"}, _load, known="known widgets", adder="add_widget", **kw)


def test_a_built_in_is_imported_on_first_use_and_once(monkeypatch):
    reads = _entry_points(monkeypatch)
    p = _plugins()
    assert LOADED == [] and p.is_builtin("thing")
    assert p.get("thing") is THING and p.get("thing") is THING
    assert LOADED == ["thing"] and reads == []  # a known name reads no entry points


def test_a_registered_plugin_replaces_the_built_in_until_unregistered(monkeypatch):
    _entry_points(monkeypatch)
    p = _plugins()
    p.register("thing", types.SimpleNamespace(name="thing", v=2))
    assert p.get("thing").v == 2 and not p.is_builtin("thing")
    p.unregister("thing")
    assert p.get("thing") is THING and p.is_builtin("thing")
    p.register("extra", OTHER)
    p.unregister("extra")
    assert "extra" not in p


def test_entry_points_are_read_when_a_name_is_missing_and_registered_names_win(monkeypatch):
    reads = _entry_points(monkeypatch, ("other", f"{__name__}:OTHER"), ("thing", "nowhere:NOTHING"))
    p = _plugins()
    assert p.get("other") is OTHER and reads == [GROUP]
    assert p.get("thing") is THING  # the built-in, not the entry point of the same name
    assert p.names() == ["other", "thing"]


def test_an_unknown_name_is_one_line_naming_the_known_ones_and_how_to_add_one(monkeypatch):
    _entry_points(monkeypatch)
    with pytest.raises(ConfigError) as e:
        _plugins().get("nope")
    assert str(e.value) == ("unknown widget 'nope'; known widgets: thing "
                            f"(add one with add_widget or the {GROUP} entry points)")


def test_a_path_naming_the_wrong_object_is_refused_each_time(monkeypatch):
    _entry_points(monkeypatch, ("liar", f"{__name__}:OTHER"))
    p = _plugins()
    for _ in range(2):
        with pytest.raises(ConfigError, match="'liar' is not called 'liar'"):
            p.get("liar")


def test_an_entry_point_that_fails_to_install_is_tried_again(monkeypatch):
    _entry_points(monkeypatch, ("other", f"{__name__}:OTHER"))
    failures = iter([RuntimeError("first read"), None])
    installed: list[str] = []

    def on_install(name: str) -> None:
        installed.append(name)
        error = next(failures)
        if error:
            raise error

    p = _plugins(on_install=on_install)
    with pytest.raises(RuntimeError, match="first read"):
        p.names()
    assert "other" not in p._entries
    assert p.names() == ["other", "thing"] and installed == ["other", "other"]  # read again, installed this time


def test_an_installed_store_kind_brings_its_manifest_formats(monkeypatch):
    """A kind's formats are known only from its object: reading its entry point imports it."""
    cube = kinds.get_kind("cube")
    fake = types.SimpleNamespace(**{m: getattr(cube, m) for m in ("open", "verify", "check", "digest", "describe",
                                                                  "statistics", "histograms", "expectations")},
                                 name="fakekind", formats=("astrobio.fake-older",))
    monkeypatch.setattr(kinds, "_TEST_FAKE_KIND", fake, raising=False)
    ep = importlib.metadata.EntryPoint("fakekind", "astrobio.stores.kinds:_TEST_FAKE_KIND", kinds.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [ep] if group == kinds.ENTRY_POINT_GROUP else [])
    try:
        assert kinds.kind_of_format("astrobio.fake-older") is fake
        assert kinds.get_kind("fakekind") is fake and "fakekind" in kinds.kind_names()
    finally:
        kinds.unregister_kind("fakekind")
    with pytest.raises(ConfigError, match="unknown store format 'astrobio.fake-older'"):
        monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [])
        kinds.kind_of_format("astrobio.fake-older")


def test_a_store_kind_installed_under_another_name_is_refused(monkeypatch):
    cube = kinds.get_kind("cube")
    monkeypatch.setattr(kinds, "_TEST_CUBE", cube, raising=False)
    ep = importlib.metadata.EntryPoint("notcube", "astrobio.stores.kinds:_TEST_CUBE", kinds.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [ep] if group == kinds.ENTRY_POINT_GROUP else [])
    with pytest.raises(ConfigError, match="registered as 'notcube' calls itself 'cube'"):
        kinds.kind_names()
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [])
    assert "notcube" not in kinds.kind_names() and kinds.get_kind("cube") is cube


def test_import_path_follows_dotted_attributes():
    assert import_path("astrobio._plugins:Plugins.get") is Plugins.get
    assert import_path("string") is string


@given(st.text(max_size=20))
def test_a_plugin_name_is_accepted_only_when_safe_in_a_cli_url_or_manifest(name):
    try:
        assert check_plugin_name(name, "widget") == name
    except ConfigError as e:
        assert str(e).startswith("a widget name must be letters, digits")
        assert not name or not name.replace("_", "").replace("-", "").isalnum()
    else:
        assert name and not set(name) & set(string.whitespace + "/:@.\\\"'")
