"""Tasks: one per model. A task is everything model-specific about a training run: its options
dataclass, its per-model defaults for the shared config sections, its data, LightningModule,
baseline(s), held-out evaluation, summary table and plots. The trainer
(`astrobio.train.trainer.train`) owns everything shared (hardware and precision, seeding, run
folder, atomic checkpoints, exact resume, early stopping, logging, summary files) and knows no
model by name: it asks this registry for the task of `cfg.model.name`.

What a task provides is the `Task` protocol below. Tasks are registered by name with a factory
(a zero-argument callable returning a fresh task object). The four built-in tasks are registered
as import paths and imported on first use, so a missing optional library (torch_geometric for
`graph`, transformers/peft for `language`) disables only that model (DependencyError naming the
pip extra, raised by the task itself). A fifth model is added without editing astrobio:

    from astrobio.train.tasks import register_task
    register_task("mymodel", MyTask)          # MyTask() satisfies Task

or, for an installed package, an entry point in the group `astrobio.tasks`
(`mymodel = "mypkg.tasks:MyTask"`), loaded the first time a name is not found. See
docs/add-a-model.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..._plugins import Plugins, import_path
from ...errors import ConfigError
from ..config import DEFAULT_MODEL

if TYPE_CHECKING:
    import lightning as L
    import torch

    from ..config import TrainConfig
    from ..evaluation import Evaluation
    from ..history import RunHistory

__all__ = ["DEFAULT_MODEL", "ENTRY_POINT_GROUP", "Built", "BuildContext", "Ensembles", "Folds", "Phase", "Phased",
           "RunsOutcome", "Task", "TaskOptions", "TrainedModule", "Tunable", "check_name", "get_task", "lazy_exports",
           "options_type", "register_task", "task_names", "unregister_task"]

ENTRY_POINT_GROUP = "astrobio.tasks"


@runtime_checkable
class TaskOptions(Protocol):
    """A task's options: a dataclass of plain typed fields (YAML `model.options`), with range
    checks that types alone do not express."""

    def validate(self) -> None:
        """Raise astrobio.ConfigError naming the option when a value is out of range."""


@dataclass
class BuildContext:
    """What the trainer hands a task's `build`: the resolved hardware (saved in the checkpoint
    meta) and the run history its LightningModule records into (it travels in checkpoints)."""

    hardware: dict[str, str]
    history: "RunHistory"


class TrainedModule(Protocol):
    """What the runner and a task's `evaluate` rely on in the LightningModule a task builds: after
    fitting, the runner restores the chosen checkpoint's weights into it, moves `model` to
    `device` and sets it to eval mode before `Task.evaluate`."""

    model: "torch.nn.Module"          # the trained network (what a checkpoint's weights are restored into)

    @property
    def device(self) -> "torch.device": ...


@dataclass
class Built:
    """A task's data and model for one run. `module` is a LightningModule that is a
    `TrainedModule` (its `model` attribute is the trained nn.Module); `meta` (plain values: store
    identity, names, ...) is saved in every checkpoint."""

    data: "L.LightningDataModule"
    module: "L.LightningModule"
    batches_per_epoch: int            # training batches per epoch on each rank
    meta: dict[str, Any]


class Task(Protocol):
    """What a model's task provides. A fresh object per run (`get_task`), so it may keep the
    run's data between `open`, `build` and `evaluate`."""

    name: str
    data_kind: str                    # the store kind it reads (`astrobio.stores.kinds`): data.location is resolved through it
    monitor: str                      # the validation metric (logged name) checkpoints and early stopping follow
    mode: str                         # "min" | "max": the monitored metric's better direction
    options_type: type                # the dataclass of this model's options (a TaskOptions)
    defaults: Mapping[str, Any]       # this model's defaults for the shared sections (data, optim, trainer, ...)

    def open(self, cfg: "TrainConfig") -> dict[str, Any]:
        """Open and check the data at `data.location` (None: the default dataset's; set it to the
        store opened), DependencyError first if an optional library is missing; return extra
        identity fields (may be empty): the runner records kind, path and content digest itself."""

    def build(self, cfg: "TrainConfig", ctx: BuildContext) -> Built:
        """The data module, the LightningModule (with its model and baseline) and the checkpoint meta."""

    def evaluate(self, cfg: "TrainConfig", module: TrainedModule, run_dir: Path) -> "Evaluation":
        """Held-out metrics of the trained `module` beside the baseline(s) (`astrobio.train.evaluation`).
        It reads nothing of the Lightning trainer: what the runner knows (best score, epochs) is in
        the summary the runner writes around it."""

    def table(self, summary: dict[str, Any]) -> str:
        """The printed summary table (summary.txt)."""

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        """(metric, model, baseline, baseline value) rows for the --mode full table."""

    def plots(self, cfg: "TrainConfig", summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        """Write the plots into `run_dir`; return name -> path."""


TaskFactory = Callable[[], Task]


@dataclass(frozen=True)
class Phase:
    """One phase of `--mode full`: a normal run of `model` into `<run>/phases/<name>/`, with
    `overrides` (YAML layout) on top of the user's settings; `init_from` maps an option of the
    model to the phase whose best checkpoint fills it (that phase runs first)."""

    name: str
    model: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    init_from: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Phased(Protocol):
    """A task that `--mode full` trains: its phases, in order (`astrobio.train.pipeline`)."""

    phases: "Sequence[Phase]"


class RunsOutcome(Protocol):
    """What a run of runs (k-fold, ensemble) hands the CLI: its folder, its table, and what the
    folder holds (the CLI's last line)."""

    run_dir: Path
    table: str
    outputs: str


@runtime_checkable
class Folds(Protocol):
    """A task that evaluates by k-fold (`--kfold K`): each fold one normal run, rerunnable."""

    def run_kfold(self, cfg: "TrainConfig", k: int) -> RunsOutcome: ...


@runtime_checkable
class Ensembles(Protocol):
    """A task that trains seed ensembles (`--ensemble N`): each member one normal run, rerunnable."""

    def run_ensemble(self, cfg: "TrainConfig", n: int) -> RunsOutcome: ...

@runtime_checkable
class Tunable(Protocol):
    """A task `astrobio tune` can search: its default search space, next to its options. The
    function calls `trial.suggest_*` with dotted config paths as names ("optim.lr",
    "model.options.hidden") and returns the overrides in the YAML layout (`config.nest_dotted`)."""

    def search_space(self, trial: Any) -> dict[str, Any]: ...


#: the built-in tasks: name -> "module:factory", imported on first use
_BUILTIN: dict[str, str] = {
    "datacube": "astrobio.train.tasks.datacube:DatacubeTask",
    "graph": "astrobio.train.tasks.graph:GraphTask",
    "language": "astrobio.train.tasks.language:LanguageTask",
    "multimodal": "astrobio.train.tasks.multimodal:MultimodalTask",
    "detector": "astrobio.train.tasks.detector:DetectorTask",
}
#: the built-in tasks' options types: importing one loads no task (no Lightning, no data), so a
#: config of a built-in model is made and checked before (and without) its task
_BUILTIN_OPTIONS: dict[str, str] = {
    "datacube": "astrobio.train.tasks.datacube.options:DatacubeOptions",
    "graph": "astrobio.train.tasks.graph.options:GraphOptions",
    "language": "astrobio.train.tasks.language.options:LanguageOptions",
    "multimodal": "astrobio.train.tasks.multimodal.options:MultimodalOptions",
    "detector": "astrobio.train.tasks.detector.options:DetectorOptions",
}


def _load_factory(name: str, obj: Any) -> TaskFactory:
    if not callable(obj):
        raise ConfigError(f"the task registered as {name!r} is not a factory (a class or a zero-argument callable)")
    return obj


TASKS: Plugins[TaskFactory] = Plugins("model", ENTRY_POINT_GROUP, _BUILTIN, _load_factory, known="available",
                                      adder="astrobio.train.tasks.register_task")


def register_task(name: str, factory: TaskFactory | str) -> None:
    """Register (or replace) the task of model `name`: a zero-argument factory returning a
    `Task`, or a "module:attribute" path imported on first use."""
    TASKS.register(name, factory)


def unregister_task(name: str) -> None:
    """Forget a registered task (a built-in one goes back to its built-in definition)."""
    TASKS.unregister(name)


def task_names() -> list[str]:
    """The registered model names (built-in, registered, and installed entry points), sorted."""
    return TASKS.names()


def check_name(name: str) -> str:
    """`name` when a model of that name is registered; ConfigError naming the available ones otherwise."""
    if name not in TASKS:
        raise TASKS.unknown(f"model {name!r}")
    return name


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module `__getattr__` that imports each public name from its submodule
    (`where`: name -> submodule) on first use."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def options_type(name: str) -> type:
    """The options dataclass of model `name` (`Task.options_type`), without importing a
    built-in task (a registered task is made to ask it)."""
    check_name(name)
    if TASKS.is_builtin(name):
        return import_path(_BUILTIN_OPTIONS[name])  # type: ignore[no-any-return]
    return get_task(name).options_type


def get_task(name: str) -> Task:
    """A fresh task object for model `name`. Unknown names raise ConfigError; a model whose
    optional library is missing or broken raises DependencyError (from the task's import or
    its `open`)."""
    task = TASKS.get(name)()
    if task.name != name:
        raise ConfigError(f"the task registered as {name!r} calls itself {task.name!r}")
    return task
