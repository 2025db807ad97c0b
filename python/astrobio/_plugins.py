"""The registry behind each of astrobio's plug-in sorts (store kinds, source formats, model
tasks): built-ins named by "module:attribute" and imported on first use (so `import astrobio`
loads none of their libraries), plug-ins registered at run time, and installed packages' entry
points, read the first time a name is not found (a registered name wins over an entry point).
xarray's backend entry points are the model.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from .errors import ConfigError

__all__ = ["Plugins", "check_plugin_name", "import_path"]

T = TypeVar("T")


def import_path(target: str) -> Any:
    """The object at "module:attribute" (the attribute may be dotted)."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def check_plugin_name(name: Any, sort: str) -> str:
    """`name` when it is letters, digits, '-' or '_' (it appears in CLIs, URLs and manifests);
    ConfigError otherwise."""
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"a {sort} name must be letters, digits, '-' or '_', got {name!r}")
    return name


class Plugins(Generic[T]):
    """The plug-ins of one sort, by name.

    `load(name, obj)` turns what a "module:attribute" path names into the plug-in (checking it;
    ConfigError when it is not one); its result is kept until the name is registered again.
    `known` and `adder` word the error for an unknown name; `on_install(name)` runs for each
    entry point as it is read."""

    def __init__(self, sort: str, group: str, builtin: Mapping[str, str], load: Callable[[str, Any], T], *,
                 known: str, adder: str, on_install: Callable[[str], None] | None = None) -> None:
        self.sort, self.group, self.known, self.adder = sort, group, known, adder
        self._on_install = on_install
        self._builtin = dict(builtin)
        self._entries: dict[str, T | str] = dict(builtin)
        self._loaded: dict[str, tuple[str, T]] = {}
        self._load = load

    def register(self, name: str, entry: T | str) -> None:
        """Register (or replace) `name`: the plug-in, or its "module:attribute" path."""
        self._entries[check_plugin_name(name, self.sort)] = entry

    def unregister(self, name: str) -> None:
        """Forget `name` (a built-in one goes back to its built-in definition)."""
        self._entries.pop(name, None)
        if name in self._builtin:
            self._entries[name] = self._builtin[name]

    def is_builtin(self, name: str) -> bool:
        """True while `name` is the built-in plug-in (not replaced by a registered one)."""
        return name in self._builtin and self._entries.get(name) == self._builtin[name]

    def load_entry_points(self) -> list[str]:
        """Add the installed packages' entry points not registered yet; returns their names."""
        added = []
        for ep in importlib.metadata.entry_points(group=self.group):
            if ep.name not in self._entries:
                self._entries[ep.name] = ep.value
                added.append(ep.name)
        for i, name in enumerate(added):
            try:
                if self._on_install is not None:
                    self._on_install(name)
            except BaseException:  # not installed: read again (and fail again) next time
                for rest in added[i:]:
                    self._entries.pop(rest, None)
                raise
        return added

    def names(self) -> list[str]:
        """Every name (built-in, registered, installed entry points), sorted."""
        self.load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if name not in self._entries:
            self.load_entry_points()
        return name in self._entries

    def get(self, name: str) -> T:
        """The plug-in called `name`, imported on first use; ConfigError (one line, naming the
        known ones) when there is none."""
        if name not in self:
            raise self.unknown(f"{self.sort} {name!r}")
        entry = self._entries[name]
        if not isinstance(entry, str):
            return entry
        if name in self._loaded and self._loaded[name][0] == entry:
            return self._loaded[name][1]
        plugin = self._load(name, import_path(entry))
        self._loaded[name] = (entry, plugin)
        return plugin

    def unknown(self, what: str) -> ConfigError:
        """The error for an unknown `what` ("store kind 'x'"), naming the known ones and how to add one."""
        return ConfigError(f"unknown {what}; {self.known}: {', '.join(self.names())} "
                           f"(add one with {self.adder} or the {self.group} entry points)")
