"""Typed training configuration: dataclasses with defaults, filled from a YAML file, `--set`
overrides and CLI flags (in that order, later wins). The resolved config is saved as a plain
dict in every checkpoint and as `config.yaml` in the run folder.

YAML layout (every key optional):

    model:   {name: datacube, options: {hidden: 128, channels: [32, 32, 16, 8], skip_channels: 8}}
    data:    {store: null, graphs: null, normalize: per_variable, batch_size: 8, num_workers: 0,
              verify: true, timeout: 600}
    optim:   {lr: 0.002, weight_decay: 0.0001, warmup_fraction: 0.05, min_lr_ratio: 0.02,
              grad_clip: 1.0, accumulate: 1}
    physics: {enabled: false, humidity_weight: 1.0, stability_weight: 0.1, kappa: 0.2857}
    trainer: {max_epochs: 60, patience: 10, seed: 0, precision: auto, ...}

`model.options` is the options dataclass of the named model's task (`Task.options_type`, see
`astrobio.train.tasks`); this module knows no model by name. A model's options may also be given
in a section named after it (`model: {graph: {hidden: 16}}`), which is how `--mode full` sets
several models' options at once, and configs and checkpoints written in the older layout (the
default model's options at the top level of `model`) still load: `migrate_model_section` is the
one place that reads those layouts. Each model also has defaults for the shared sections
(`Task.defaults`, e.g. the graph VAE trains more, cheaper epochs): they are applied first
(`TrainConfig.for_model`), then the file, `--set` and flags.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import ConfigError
from .tasks import DEFAULT_MODEL, check_name, get_task, task_names

__all__ = ["ModelConfig", "model_name", "DataConfig", "OptimConfig", "PhysicsConfig", "TrainerConfig", "TrainConfig",
           "load_yaml", "apply_overrides", "config_from_dict", "parse_set", "nest_dotted", "options_for", "migrate_model_section"]


def options_for(name: str) -> Any:
    """The default options of model `name` (an instance of its task's options dataclass)."""
    return get_task(name).options_type()


@dataclass
class ModelConfig:
    """Which model to train and its options: `options` is an instance of that model's task's
    options dataclass (`Task.options_type`), filled from YAML `model: {name: ..., options: {...}}`."""

    name: str = DEFAULT_MODEL
    options: Any = field(default_factory=lambda: options_for(DEFAULT_MODEL))


@dataclass
class DataConfig:
    store: str | None = None          # climate store (datacube, multimodal); None: the default dataset's
    graphs: str | None = None         # metabolic graph store (graph, language); None: the default dataset's
    ref: str | None = None            # a registered dataset version name@vN (sets store or graphs; astrobio[serve])
    params: list[str] | None = None   # model inputs by name (None: every parameter of the store)
    normalize: str = "per_variable"   # per_variable | per_level
    batch_size: int = 8               # per device
    num_workers: int = 0              # DataLoader workers (0: read in the training process)
    threads: int | None = None        # native reader threads (None: astrobio.data.choose_threads: the cores, split among workers, <= batch)
    readahead_depth: int | None = None  # batches read ahead without workers (None: decided from read vs step time, 1-4)
    batch_dtype: str = "float32"      # float32 | bfloat16: training batches written narrowed by the core (bf16 training)
    shuffle_block: int | None = None  # shuffle blocks of this many consecutive samples (None: a sharded store's shard size, else 1)
    verify: bool = True               # full integrity scan + digest check of the store before training
    timeout: float = 600.0            # seconds a DataLoader worker may take for one batch (0: no limit)
    split: dict[str, list[str]] | None = None  # runs per split (train/val/test), replacing the store's (k-fold)


@dataclass
class OptimConfig:
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05     # of all optimizer steps, linear from 0
    min_lr_ratio: float = 0.02        # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0            # max global gradient norm (0: off)
    accumulate: int = 1               # gradient accumulation (batches per optimizer step)
    param_noise: float = 0.0          # std of Gaussian noise added to the normalized params in training
    grad_norm_limit: float = 1.0e6    # a gradient norm above this stops the run (0: only a non-finite norm does)


@dataclass
class PhysicsConfig:
    enabled: bool = False
    humidity_weight: float = 1.0
    stability_weight: float = 0.1
    kappa: float = 2.0 / 7.0


@dataclass
class TrainerConfig:
    max_epochs: int = 60
    patience: int = 10                # early stopping on val RMSE (epochs without improvement)
    seed: int = 0
    precision: str = "auto"           # auto | 32-true | bf16-mixed | 16-mixed
    accelerator: str = "auto"         # auto | cpu | gpu
    devices: int = 1
    num_nodes: int = 1
    output_dir: str | None = None     # None: runs/<model>-<timestamp>
    checkpoint_every_n_epochs: int = 10
    checkpoint_every_n_steps: int = 0  # also write last.ckpt every N optimizer steps (0: off)
    logger: str = "tensorboard"       # tensorboard | csv | mlflow (offline file store) | none
    progress_bar: bool = True
    plots: bool = True
    plot_samples: int = 3
    deterministic: bool = True
    phases: list[str] | None = None   # --mode full: the phases to run, in order (None: all; see astrobio.train.pipeline)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_model(cls, name: str) -> "TrainConfig":
        """Defaults for model `name`: the dataclass defaults, then that model's own defaults for
        the shared sections (`Task.defaults`)."""
        task = get_task(check_name(name))
        cfg = cls(model=ModelConfig(name=name, options=task.options_type()))
        return apply_overrides(cfg, task.defaults)

    def validate(self) -> "TrainConfig":
        """Range checks that types alone do not express; returns self."""
        checks = [
            (self.data.batch_size >= 1, "data.batch_size must be >= 1"),
            (self.data.num_workers >= 0, "data.num_workers must be >= 0"),
            (self.data.shuffle_block is None or self.data.shuffle_block >= 1, "data.shuffle_block must be >= 1 (or null)"),
            (self.data.normalize in ("per_variable", "per_level"), "data.normalize must be per_variable or per_level"),
            (self.optim.lr > 0, "optim.lr must be > 0"),
            (0 <= self.optim.warmup_fraction < 1, "optim.warmup_fraction must be in [0, 1)"),
            (0 <= self.optim.min_lr_ratio <= 1, "optim.min_lr_ratio must be in [0, 1]"),
            (self.optim.grad_clip >= 0, "optim.grad_clip must be >= 0"),
            (self.optim.accumulate >= 1, "optim.accumulate must be >= 1"),
            (self.optim.param_noise >= 0, "optim.param_noise must be >= 0"),
            (self.optim.grad_norm_limit >= 0, "optim.grad_norm_limit must be >= 0"),
            (self.data.timeout >= 0, "data.timeout must be >= 0"),
            (self.data.readahead_depth is None or self.data.readahead_depth >= 1, "data.readahead_depth must be >= 1 (or null)"),
            (self.data.batch_dtype in ("float32", "bfloat16"), "data.batch_dtype must be float32 or bfloat16"),
            (self.data.threads is None or self.data.threads >= 0, "data.threads must be >= 0 (0: every core; null: chosen)"),
            (self.trainer.max_epochs >= 1, "trainer.max_epochs must be >= 1"),
            (self.trainer.patience >= 1, "trainer.patience must be >= 1"),
            (self.trainer.devices >= 1 and self.trainer.num_nodes >= 1, "trainer.devices and num_nodes must be >= 1"),
            (self.trainer.precision in ("auto", "32-true", "bf16-mixed", "16-mixed"),
             "trainer.precision must be auto, 32-true, bf16-mixed or 16-mixed"),
            (self.trainer.accelerator in ("auto", "cpu", "gpu", "cuda"), "trainer.accelerator must be auto, cpu or gpu"),
            (self.trainer.logger in ("tensorboard", "csv", "mlflow", "none"),
             "trainer.logger must be tensorboard, csv, mlflow or none"),
            (self.trainer.checkpoint_every_n_epochs >= 1, "trainer.checkpoint_every_n_epochs must be >= 1"),
            (self.trainer.checkpoint_every_n_steps >= 0, "trainer.checkpoint_every_n_steps must be >= 0"),
            (self.trainer.plot_samples >= 0, "trainer.plot_samples must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.model.options.validate()
        for name, value in (("data.store", self.data.store), ("trainer.output_dir", self.trainer.output_dir)):
            if value is not None and "\0" in value:  # the OS would refuse it later, with a traceback
                raise ConfigError(f"{name} contains a NUL character: {value!r}")
        return self


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` checked against the annotation `hint` (int -> float allowed; nothing else is converted)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_hint, item = typing.get_args(hint)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return {_coerce(k, key_hint, where): _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string: accept what is plainly a number
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported option type {hint!r}")


def _fill(obj: Any, values: Mapping[str, Any], where: str) -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in fields(obj)}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"unknown option {path!r}; valid: {', '.join(sorted(f'{where}.{n}' if where else n for n in names))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{path} must be a mapping of options, got {value!r}")
            _fill(current, value, path)
        else:
            setattr(obj, key, _coerce(value, hints[key], path))


def migrate_model_section(model: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The `model` section of one config layer in the current layout, `{name, options}`, for the
    run of model `name` (the layer's own `model.name` when it sets one). The one place that reads
    the other layouts:

    - `options: {...}`: the current layout;
    - `<model name>: {...}` (a section named after a registered model): that model's options, as
      configs and checkpoints before the redesign held them (`model.graph`, `model.multimodal`,
      `model.language`) and as `--mode full` sets several models' options;
    - any other key: an option of the default model, whose options were the top level of
      `model` in configs and checkpoints written before the other models existed.

    Options of models other than `name` are dropped (they applied only when that model trained).
    Within one layer, top-level keys, then the named section, then `options` (later wins)."""
    if not isinstance(model, Mapping):
        raise ConfigError(f"model must be a mapping of options, got {model!r}")
    name = model.get("name", name)
    if not isinstance(name, str):
        raise ConfigError(f"model.name must be a string, got {name!r}")
    models = set(task_names())
    legacy = {k: v for k, v in model.items() if k not in ("name", "options") and not (k in models and isinstance(v, Mapping))}
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


def _fill_model(cfg: "TrainConfig", values: Any) -> None:
    """Fill `cfg.model` from one layer's `model` section (any layout, see `migrate_model_section`).
    Naming another model starts from that model's default options."""
    section = migrate_model_section(values, cfg.model.name)
    name = section.get("name", cfg.model.name)
    if name != cfg.model.name:
        cfg.model = ModelConfig(name=check_name(name), options=options_for(name))
    _fill(cfg.model.options, section["options"], "model.options")


def apply_overrides(cfg: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """Fill `cfg` in place from a nested mapping (YAML layout) and return it."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"a config must be a mapping of sections, got {values!r}")
    if "model" in values:
        _fill_model(cfg, values["model"])
    _fill(cfg, {k: v for k, v in values.items() if k != "model"}, "")
    return cfg


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """A config from the model's defaults + a nested mapping (e.g. the dict saved in a
    checkpoint, in any layout astrobio has written)."""
    model = values.get("model") if isinstance(values, Mapping) else None
    name = model.get("name", DEFAULT_MODEL) if isinstance(model, Mapping) else DEFAULT_MODEL
    cfg = TrainConfig(model=ModelConfig(name=check_name(str(name)), options=options_for(str(name))))
    return apply_overrides(cfg, values).validate()


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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file; ConfigError if it is missing or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise ConfigError(f"config file {p} must hold a mapping of sections (model, data, optim, physics, trainer)")
    return dict(doc)


def nest_dotted(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"optim.lr": 1e-3, "model.options.hidden": 64} -> the nested YAML layout."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """`section.key=value` strings (value parsed as YAML: 3, 0.1, true, [1, 2], null) as a nested mapping."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes section.key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot parse {raw!r}") from None
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
