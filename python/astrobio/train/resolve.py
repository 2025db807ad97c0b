"""The one place a run's config is put together, for the CLI, the Python API (`train`), the
`--mode full` pipeline and `astrobio tune`:

    dataclass defaults < the model's defaults for the shared sections (`Task.defaults`)
      < each layer in order (YAML file, `--set`, flags, a phase's or a trial's settings)

or, resuming, the checkpoint's saved config (migrated) < the layers. Every layer, and every
saved config, may be in any layout astrobio has written; `migrate_layer` is the one reader of the
older ones:

- `model: {options: {...}}`: the current layout;
- `model: {<model name>: {...}}`: that model's options, as configs and checkpoints before the
  first redesign held them and as `--mode full` sets several models' options at once;
- any other key of `model`: an option of the default model, whose options were the top level of
  `model` before the other models existed;
- a top-level `physics:` section (before round two): the datacube's loss terms, now
  `model.options.physics`; dropped for a model whose options have no `physics`.

Options a saved config lacks because they did not exist yet take the value that reproduces the
run it trained (`LEGACY` of the options class; `migrate_saved_options`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._stack import lightning_module
from .config import DEFAULT_MODEL, ModelConfig, TrainConfig, fill, migrate_data_section
from .tasks import check_name, get_task, options_type, task_names

__all__ = ["defaults", "resolve", "apply_overrides", "config_from_dict", "saved_config", "migrate_layer",
           "migrate_model_section", "migrate_saved_options", "model_name", "options_for"]

#: shared sections that later moved into a model's options: section -> the options field it became
_RETIRED_SECTIONS = {"physics": "physics"}


def options_for(name: str) -> Any:
    """The default options of model `name` (an instance of its task's options dataclass)."""
    return options_type(name)()


def migrate_model_section(model: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The `model` section of one layer in the current layout, `{name, options}`, for the run of
    model `name` (the layer's own `model.name` when it sets one); see the module docstring.
    Options of other models are dropped (they applied only when that model trained)."""
    if not isinstance(model, Mapping):
        raise ConfigError(f"model must be a mapping (name, options), got {model!r}")
    if "name" in model:
        if not isinstance(model["name"], str):
            raise ConfigError(f"model.name must be a string, got {model['name']!r}")
        name = model["name"]
    models = set(task_names())
    legacy = {k: v for k, v in model.items() if k not in ("name", "options") and k not in models}
    sections = {k: v for k, v in model.items() if k in models and isinstance(v, Mapping)}
    options: dict[str, Any] = dict(legacy) if name == DEFAULT_MODEL else {}
    options.update(sections.get(name, {}))
    if "options" in model:
        if not isinstance(model["options"], Mapping):
            raise ConfigError(f"model.options must be a mapping of options, got {model['options']!r}")
        options.update(model["options"])
    out: dict[str, Any] = {"options": options}
    if "name" in model:
        out["name"] = name
    return out


def migrate_layer(layer: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One config layer (YAML layout, any layout astrobio has written) in the current layout, for
    the run of model `name` (or the layer's own `model.name`)."""
    if not isinstance(layer, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {layer!r}")
    out = {k: v for k, v in layer.items() if k not in _RETIRED_SECTIONS}
    if "data" in out:  # data.store / graphs / ref of older configs -> data.location
        out["data"] = migrate_data_section(out["data"], lambda: get_task(model_name(layer, default=name)).data_kind)
    retired = {k: layer[k] for k in _RETIRED_SECTIONS if k in layer}
    if "model" not in layer and not retired:
        return out
    model = migrate_model_section(layer.get("model") or {}, name)
    name = model.get("name", name)
    fields = {f.name for f in dataclasses.fields(options_type(check_name(name)))}
    for section, option in _RETIRED_SECTIONS.items():
        if section in retired and option in fields:  # the layer's own model.options win over the old section
            old = retired[section]
            model["options"][option] = {**old, **model["options"].get(option, {})} if isinstance(old, Mapping) else old
    out["model"] = model
    return out


def _apply_model(cfg: TrainConfig, section: Mapping[str, Any]) -> None:
    name = section.get("name", cfg.model.name)
    if name != cfg.model.name:  # naming another model starts from that model's default options
        cfg.model = ModelConfig(name=check_name(name), options=options_for(name))
    fill(cfg.model.options, section["options"], "model.options")


def apply_overrides(cfg: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """Fill `cfg` in place from one layer (YAML layout, any layout astrobio has written) and return it."""
    layer = migrate_layer(values, cfg.model.name)
    if "model" in layer:
        _apply_model(cfg, layer["model"])
    fill(cfg, {k: v for k, v in layer.items() if k != "model"})
    return cfg


def model_name(*layers: Mapping[str, Any], default: str = DEFAULT_MODEL) -> str:
    """The `model.name` the last layer that sets it gives (layers in precedence order)."""
    name = default
    for layer in layers:
        model = layer.get("model")
        if isinstance(model, Mapping) and "name" in model:
            if not isinstance(model["name"], str):
                raise ConfigError(f"model.name must be a string, got {model['name']!r}")
            name = model["name"]
    return name


def defaults(name: str) -> TrainConfig:
    """The config of model `name` before any layer: the dataclass defaults, then the model's own
    defaults for the shared sections (`Task.defaults`)."""
    cfg = TrainConfig(model=ModelConfig(name=check_name(name), options=options_for(name)))
    return apply_overrides(cfg, get_task(name).defaults)


def migrate_saved_options(cfg: TrainConfig, saved: Mapping[str, Any]) -> TrainConfig:
    """Options of `cfg`'s model that the saved config `saved` lacks (it was written before they
    existed) take the value that reproduces the run it trained (`LEGACY` of the options class)."""
    had = migrate_layer(saved, cfg.model.name).get("model", {}).get("options", {})
    for option, value in getattr(type(cfg.model.options), "LEGACY", {}).items():
        if option not in had:
            setattr(cfg.model.options, option, copy.deepcopy(value))
    return cfg


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """A config from the model's defaults + a nested mapping (e.g. the dict saved in a
    checkpoint, in any layout astrobio has written)."""
    name = check_name(model_name(values) if isinstance(values, Mapping) else DEFAULT_MODEL)
    return apply_overrides(TrainConfig(model=ModelConfig(name=name, options=options_for(name))), values).validate()


def saved_config(checkpoint: str | Path) -> tuple[Path, dict[str, Any]]:
    """(checkpoint file, the config dict saved in it) for a checkpoint file or run folder."""
    path = lightning_module("trainer").resolve_checkpoint(checkpoint)
    return path, lightning_module("checkpoint").load_checkpoint(path)["astrobio"]["config"]


def resolve(layers: Sequence[Mapping[str, Any]] = (), *, model: str | None = None,
            resume: str | Path | None = None) -> TrainConfig:
    """The config of one run: the defaults of `model` (else the model the layers name, else the
    default model), or with `resume` the checkpoint's saved config (migrated), then `layers` in
    order; validated."""
    if resume is not None:
        _, saved = saved_config(resume)
        cfg = migrate_saved_options(config_from_dict(saved), saved)
    else:
        cfg = defaults(model or model_name(*layers))
    for layer in layers:
        apply_overrides(cfg, layer)
    return cfg.validate()
