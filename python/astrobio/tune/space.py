"""Search spaces for `astrobio tune`: each model's task defines its own (`Tunable.search_space`,
next to its options), overridable from YAML.

A space function takes an optuna trial and returns config overrides in the YAML layout
(`{"optim": {"lr": ...}, "model": {...}}`). It names each parameter by its dotted config path
("optim.lr"), so a YAML file can replace, add or drop any of them:

    optim.lr:       {low: 1.0e-4, high: 1.0e-2, log: true}   # float range (log scale)
    model.options.hidden:   {choices: [64, 128]}               # categorical
    data.batch_size: {low: 4, high: 16, step: 4}              # int range (both ends integers)
    model.options.channels: {choices: [[32, 16, 8], [32, 32, 16, 8]]}  # lists are fine as choices
    optim.weight_decay: null                                   # not searched: the base config's value

A key the model's function does not search is added to the space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from ..errors import ConfigError
from ..train.config import load_yaml, nest_dotted
from ..train.tasks import Tunable, get_task

__all__ = ["load_space", "check_space", "suggest", "tunable"]

#: sentinel a dropped parameter returns; its key is removed from the overrides
_KEEP = object()


def tunable(model: str) -> Tunable:
    """The task of `model` when it has a search space (`Tunable`); ConfigError otherwise."""
    task = get_task(model)
    if not isinstance(task, Tunable):
        raise ConfigError(f"model {model!r} has no search space: give its task a search_space(trial) method "
                          "(see docs/tuning.md) or pass --space with every parameter")
    return task


def check_space(space: Mapping[str, Any], where: str = "search space") -> dict[str, Any]:
    """`space` (dotted path -> spec or null) checked; ConfigError names the first bad entry."""
    out: dict[str, Any] = {}
    for path, spec in space.items():
        if not isinstance(path, str) or not path or "." not in path:
            raise ConfigError(f"{where}: keys are dotted config paths like optim.lr, got {path!r}")
        if spec is None:
            out[path] = None
            continue
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: {path} must be {{low, high[, log, step]}}, {{choices: [...]}} or null, got {spec!r}")
        keys = set(spec)
        if "choices" in spec:
            if keys != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ConfigError(f"{where}: {path}: choices must be a non-empty list and come alone")
        elif {"low", "high"} <= keys <= {"low", "high", "log", "step"}:
            low, high = spec["low"], spec["high"]
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high)) or not low < high:
                raise ConfigError(f"{where}: {path}: low and high must be numbers with low < high, got {low!r}, {high!r}")
            if spec.get("log") and low <= 0:
                raise ConfigError(f"{where}: {path}: a log range needs low > 0")
            if spec.get("log") and spec.get("step") is not None:
                raise ConfigError(f"{where}: {path}: log and step cannot be combined")
        else:
            raise ConfigError(f"{where}: {path} must have low and high (optional log, step) or choices; got keys {sorted(keys)}")
        out[path] = dict(spec)
    return out


def load_space(path: str) -> dict[str, Any]:
    """A search-space YAML file (see the module docstring), checked."""
    return check_space(load_yaml(path), f"search space {path}")


def _label(choice: Any) -> Any:
    """optuna's categorical choices must be scalars: a list becomes its YAML flow text."""
    return yaml.safe_dump(choice, default_flow_style=True).strip() if isinstance(choice, (list, dict)) else choice


def _from_spec(trial: Any, path: str, spec: Mapping[str, Any]) -> Any:
    if "choices" in spec:
        labels = [_label(c) for c in spec["choices"]]
        picked = trial.suggest_categorical(path, labels)
        return spec["choices"][labels.index(picked)]
    low, high = spec["low"], spec["high"]
    if isinstance(low, int) and isinstance(high, int) and not spec.get("log"):
        return trial.suggest_int(path, low, high, step=spec.get("step") or 1)
    if isinstance(low, int) and isinstance(high, int):
        return trial.suggest_int(path, low, high, log=True)
    return trial.suggest_float(path, float(low), float(high), log=bool(spec.get("log")), step=spec.get("step"))


class _SpaceTrial:
    """An optuna trial seen through the YAML overrides: a parameter the file names is drawn from
    the file's spec, a dropped one returns _KEEP; list choices travel as their YAML text."""

    def __init__(self, trial: Any, overrides: Mapping[str, Any]) -> None:
        self.trial, self.overrides = trial, overrides
        self.seen: set[str] = set()

    def _draw(self, name: str, default: Callable[[], Any]) -> Any:
        self.seen.add(name)
        if name in self.overrides:
            spec = self.overrides[name]
            return _KEEP if spec is None else _from_spec(self.trial, name, spec)
        return default()

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False, step: float | None = None) -> Any:
        return self._draw(name, lambda: self.trial.suggest_float(name, low, high, log=log, step=step))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> Any:
        return self._draw(name, lambda: self.trial.suggest_int(name, low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._draw(name, lambda: _from_spec(self.trial, name, {"choices": choices}))


def _drop_kept(node: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            v = _drop_kept(v)
            if v:
                out[k] = v
        elif v is not _KEEP:
            out[k] = v
    return out


def suggest(trial: Any, model: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config overrides (YAML layout) for one trial of `model`: its space function (called
    with a proxy trial that also accepts list choices), then the YAML `overrides` (replace, add,
    or drop with null)."""
    overrides = overrides or {}
    proxy = _SpaceTrial(trial, overrides)
    values = tunable(model).search_space(proxy)
    extra = {p: _from_spec(trial, p, s) for p, s in overrides.items() if p not in proxy.seen and s is not None}
    return _drop_kept(_merge(values, nest_dotted(extra)))


def _merge(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out
