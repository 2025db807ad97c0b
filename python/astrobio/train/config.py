"""Typed training configuration: plain dataclasses with defaults, and the generic rules that fill
them from YAML-layout mappings (`fill`, `load_yaml`, `parse_set`, `nest_dotted`). The resolved
config is saved as a plain dict in every checkpoint and as `config.yaml` in the run folder.

YAML layout (every key optional):

    model:   {name: datacube, options: {hidden: 128, channels: [32, 32, 16, 8], skip_channels: 8,
              physics: {enabled: false, humidity_weight: 1.0, stability_weight: 0.1, kappa: 0.2857}}}
    data:    {location: null, normalize: per_variable, batch_size: 8, num_workers: 0,
              verify: true, timeout: 600}
    optim:   {lr: 0.002, weight_decay: 0.0001, warmup_fraction: 0.05, min_lr_ratio: 0.02,
              grad_clip: 1.0, accumulate: 1}
    trainer: {max_epochs: 60, patience: 10, seed: 0, precision: auto, ...}

`model.options` is the options dataclass of the named model's task (`Task.options_type`). This
module imports no task: the default model's options come from the task registry's table of
options types (`astrobio.train.tasks.options_type`, which imports only the options module).
Layering (model defaults, task defaults, YAML, `--set`, flags, checkpoints) and the migration
of older layouts live in `astrobio.train.resolve`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..errors import ConfigError

__all__ = ["DEFAULT_MODEL", "ModelConfig", "DataConfig", "OptimConfig", "TrainerConfig", "TrainConfig", "fill", "load_yaml",
           "parse_set", "nest_dotted", "migrate_data_section", "LEGACY_LOCATION_KEYS"]

#: the model trained when none is named; its options were the top level of `model` in configs
#: written before the other models existed (see `astrobio.train.resolve.migrate_model_section`)
DEFAULT_MODEL = "datacube"


def _default_options() -> Any:
    """The default model's options. Looked up in the task registry's options table when a
    ModelConfig is made (not when this module imports); that table imports only the options
    module of a built-in task, never the task, so `TrainConfig()` loads no Lightning."""
    from .tasks import options_type

    return options_type(DEFAULT_MODEL)()


@dataclass
class ModelConfig:
    """Which model to train and its options: `options` is an instance of that model's task's
    options dataclass (`Task.options_type`), filled from YAML `model: {name: ..., options: {...}}`."""

    name: str = DEFAULT_MODEL
    options: Any = field(default_factory=_default_options)


#: keys older configs and checkpoints named a store with, and the store kind each named: read by
#: `migrate_data_section` only (`data.ref` named a registered version of any kind)
LEGACY_LOCATION_KEYS = {"store": "cube", "graphs": "graph", "ref": None}


@dataclass
class DataConfig:
    # the store the model trains on: a path, an s3:// URL or a registered version name@vN
    # (astrobio[serve]), of the model's data kind (`Task.data_kind`); None: the default dataset's
    location: str | None = None
    params: list[str] | None = None   # model inputs by name (None: every parameter of the store)
    normalize: str = "per_variable"   # per_variable | per_level
    batch_size: int = 8               # per device
    num_workers: int = 0              # DataLoader workers (0: read in the training process)
    threads: int | None = None        # native reader threads (None: all cores, 1 inside workers)
    shuffle_block: int | None = None  # shuffle blocks of this many consecutive samples (None: a sharded store's shard size, else 1)
    verify: bool = True               # full integrity scan + digest check of the store before training
    timeout: float = 600.0            # seconds a DataLoader worker may take for one batch (0: no limit)
    split: dict[str, list[str]] | None = None  # runs per split (train/val/test), replacing the store's (k-fold)

    # The older names, for Python code that sets them (`cfg.data.store = path`): each is the location.
    @property
    def store(self) -> str | None:
        return self.location

    @store.setter
    def store(self, value: str | None) -> None:
        self.location = value

    graphs = ref = store


def migrate_data_section(data: Any, data_kind: "Callable[[], str | None]") -> Any:
    """The `data` section of one config layer with the older location keys (`store`, `graphs`,
    `ref`; see `LEGACY_LOCATION_KEYS`) folded into `location`. A layer that names both a cube
    and a graph store (configs written for `--mode full`) keeps the one of the run's model's
    data kind (`data_kind()`, asked only then). An explicit `location` wins."""
    if not isinstance(data, Mapping) or not any(k in data for k in LEGACY_LOCATION_KEYS):
        return data
    out = {k: v for k, v in data.items() if k not in LEGACY_LOCATION_KEYS}
    given = {k: data[k] for k in LEGACY_LOCATION_KEYS if data.get(k) is not None}
    if "location" not in out and given:
        if given.get("ref") is not None:
            out["location"] = given["ref"]
        elif len(given) == 1:
            out["location"] = next(iter(given.values()))
        else:
            kind = data_kind()
            out["location"] = next((v for k, v in given.items() if LEGACY_LOCATION_KEYS[k] == kind), None)
    return out


def migrate_data_section(data: Any, data_kind: "Callable[[], str | None]") -> Any:
    """The `data` section of one config layer with the older location keys (`store`, `graphs`,
    `ref`; see `LEGACY_LOCATION_KEYS`) folded into `location`. A layer that names both a cube
    and a graph store (configs written for `--mode full`) keeps the one of the run's model's
    data kind (`data_kind()`, asked only then). An explicit `location` wins."""
    if not isinstance(data, Mapping) or not any(k in data for k in LEGACY_LOCATION_KEYS):
        return data
    out = {k: v for k, v in data.items() if k not in LEGACY_LOCATION_KEYS}
    given = {k: data[k] for k in LEGACY_LOCATION_KEYS if data.get(k) is not None}
    if "location" not in out and given:
        if given.get("ref") is not None:
            out["location"] = given["ref"]
        elif len(given) == 1:
            out["location"] = next(iter(given.values()))
        else:
            kind = data_kind()
            out["location"] = next((v for k, v in given.items() if LEGACY_LOCATION_KEYS[k] == kind), None)
    return out


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
class TrainerConfig:
    max_epochs: int = 60
    patience: int = 10                # early stopping: epochs without improvement of the task's monitored metric
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
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_model(cls, name: str) -> "TrainConfig":
        """Defaults for model `name`: the dataclass defaults, then that model's own defaults for
        the shared sections (`Task.defaults`); see `astrobio.train.resolve.defaults`."""
        from .resolve import defaults

        return defaults(name)

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
        for name, value in (("data.location", self.data.location), ("trainer.output_dir", self.trainer.output_dir)):
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


def fill(obj: Any, values: Mapping[str, Any], where: str = "") -> None:
    """Set the fields of dataclass `obj` from `values` (nested dataclasses recursively), each
    checked against its annotation; an unknown key or a wrong type is a ConfigError naming it."""
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
            fill(current, value, path)
        else:
            setattr(obj, key, _coerce(value, hints[key], path))


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
        raise ConfigError(f"config file {p} must hold a mapping of sections (model, data, optim, trainer)")
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
