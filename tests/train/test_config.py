"""Training config: defaults < YAML file < --set < flags, typed, unknown keys refused (no training)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import pytest

import astrobio
from astrobio.train.cli import build_config, build_parser
from astrobio.train.config import TrainConfig
from astrobio.train.resolve import config_from_dict
from astrobio.train.tasks.datacube.options import PhysicsOptions


def _config(argv):
    return build_config(build_parser().parse_args(argv))


def test_yaml_then_set_then_flags(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("optim: {lr: 0.01, accumulate: 2}\ntrainer: {max_epochs: 7, seed: 3}\ndata: {batch_size: 4}\n"
                 "model: {options: {channels: [16, 16, 8]}}\nphysics: {stability_weight: 1}\n")
    cfg = _config(["--config", str(f), "--set", "optim.lr=0.005", "--set", "trainer.max_epochs=8", "--max-epochs", "9",
                   "--physics-constraints", "--store", "x.zarr"])
    assert cfg.optim.lr == 0.005            # --set beats the file
    assert cfg.trainer.max_epochs == 9      # a flag beats --set and the file
    assert cfg.trainer.seed == 3 and cfg.data.batch_size == 4 and cfg.optim.accumulate == 2  # from the file
    assert cfg.model.options.channels == [16, 16, 8] and cfg.model.options.physics.enabled and cfg.data.store == "x.zarr"
    physics = cfg.model.options.physics  # the old top-level physics section moved into the datacube's options
    assert physics.stability_weight == 1.0 and isinstance(physics.stability_weight, float)
    assert cfg.trainer.patience == TrainConfig().trainer.patience  # untouched default
    assert config_from_dict(cfg.to_dict()) == cfg  # the saved dict round-trips


@pytest.mark.parametrize("yaml_text, message", [
    ("optim: {lrr: 0.1}", "unknown option 'optim.lrr'"),
    ("trainer: {max_epochs: ten}", "trainer.max_epochs must be an integer"),
    ("trainer: {progress_bar: 1}", "trainer.progress_bar must be true or false"),
    ("model: {options: {channels: 8}}", "model.options.channels must be a list"),
    ("model: {name: nope}", "unknown model 'nope'"),
    ("model: {options: {nope: 1}}", "unknown option 'model.options.nope'"),
    ("optim: 3", "optim must be a mapping"),
    ("- a\n- b", "must hold a mapping"),
    ("optim: {lr: [", "not valid YAML"),
    ("optim: {lr: -1}", "optim.lr must be > 0"),
    ("trainer: {precision: fp8}", "trainer.precision must be"),
])
def test_bad_config_files_are_config_errors(tmp_path, yaml_text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml_text)
    with pytest.raises(astrobio.ConfigError, match=message):
        _config(["--config", str(f)])


def test_bad_set_and_missing_file():
    with pytest.raises(astrobio.ConfigError, match="section.key=value"):
        _config(["--set", "nonsense"])
    with pytest.raises(astrobio.ConfigError, match="config file not found"):
        _config(["--config", "/nonexistent/exp.yaml"])


def test_help_has_examples(capsys):
    from astrobio.cli import main as astrobio_main
    from astrobio.train.cli import main as train_main

    for call in (lambda: train_main(["--help"]), lambda: astrobio_main(["train", "--help"])):
        with pytest.raises(SystemExit) as info:
            call()
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "--resume" in out and "torchrun" in out and "--physics-constraints" in out


def test_warmup_cosine_schedule_known_values():
    from astrobio.train.optim import warmup_cosine

    f = lambda step: warmup_cosine(step, warmup=4, total=10, floor=0.1)  # noqa: E731
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]   # linear warmup
    assert f(4) == pytest.approx(1.0) and f(7) == pytest.approx(0.55) and f(10) == pytest.approx(0.1)
    assert f(50) == pytest.approx(0.1)                          # stays at the floor


def test_precision_policy_on_this_cpu(monkeypatch):
    from astrobio.train.trainer import resolve_hardware

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    cfg = TrainConfig()
    assert resolve_hardware(cfg)[:2] == ("cpu", "32-true")
    cfg.trainer.precision = "bf16-mixed"  # asked for explicitly: honoured on CPU (autocast bf16)
    assert resolve_hardware(cfg)[:2] == ("cpu", "bf16-mixed")
    cfg.trainer.precision = "16-mixed"
    with pytest.raises(astrobio.ConfigError, match="16-mixed needs CUDA"):
        resolve_hardware(cfg)
    cfg.trainer.precision, cfg.trainer.accelerator = "auto", "gpu"
    with pytest.raises(astrobio.ConfigError, match="CUDA is not available"):
        resolve_hardware(cfg)


def test_older_model_layouts_migrate_in_one_place():
    from astrobio.train.resolve import migrate_model_section

    # before the other models: the datacube's options at the top level of `model`
    assert migrate_model_section({"name": "datacube", "hidden": 64, "graph": {"hidden": 3}}, "datacube") == \
        {"name": "datacube", "options": {"hidden": 64}}
    # before {name, options}: every other model in its own section; other models' options are dropped
    assert migrate_model_section({"name": "graph", "hidden": 64, "graph": {"hidden": 3}}, "graph") == \
        {"name": "graph", "options": {"hidden": 3}}
    assert migrate_model_section({"hidden": 64, "options": {"hidden": 8}}, "datacube") == {"options": {"hidden": 8}}
    # a whole config as format-1 checkpoints saved it (every model's section present) loads
    old = {"model": {"name": "multimodal", "hidden": 128, "channels": [32, 32, 16, 8], "skip_channels": 8,
                     "graph": {"hidden": 64, "latent": 32}, "multimodal": {"embed": 8, "modalities": ["cube"]},
                     "language": {"r": 2}}, "trainer": {"max_epochs": 3}}
    cfg = config_from_dict(old)
    assert cfg.model.name == "multimodal" and cfg.model.options.embed == 8 and cfg.model.options.modalities == ["cube"]
    assert cfg.trainer.max_epochs == 3 and cfg.to_dict()["model"]["options"]["embed"] == 8
    assert config_from_dict(cfg.to_dict()) == cfg  # the new layout round-trips
    with pytest.raises(astrobio.ConfigError, match="unknown model 'nope'"):
        config_from_dict({"model": {"name": "nope"}})


def test_model_choices_defaults_and_option_sections(tmp_path):
    parser = build_parser()
    for name in ("datacube", "graph", "language", "multimodal"):
        assert build_config(parser.parse_args(["--model", name])).model.name == name
    cfg = build_config(parser.parse_args(["--model", "graph", "--set", "model.options.latent=4"]))
    assert cfg.model.options.latent == 4 and cfg.trainer.max_epochs == 200 and cfg.data.batch_size == 3  # graph defaults
    assert build_config(parser.parse_args(["--model", "graph", "--max-epochs", "7"])).trainer.max_epochs == 7
    old = tmp_path / "old.yaml"  # a config written before the other models existed still loads
    old.write_text("model: {name: datacube, hidden: 64, channels: [16, 8]}\ntrainer: {max_epochs: 4}\n")
    cfg = build_config(parser.parse_args(["--config", str(old)]))
    assert asdict(cfg.model.options) == {"hidden": 64, "channels": [16, 8], "skip_channels": 8, "physics_baseline": True,
                                         "linear_departure": True, "physics": asdict(PhysicsOptions())}
    assert cfg.trainer.max_epochs == 4
    new = tmp_path / "new.yaml"
    new.write_text("model: {name: multimodal, options: {modalities: [cube], embed: 8}}\n")
    cfg = build_config(parser.parse_args(["--config", str(new)]))
    assert cfg.model.options.modalities == ["cube"] and cfg.model.options.embed == 8 and cfg.trainer.patience == 15
    sections = tmp_path / "sections.yaml"  # the per-model sections of the layout before {name, options}
    sections.write_text("model: {name: multimodal, multimodal: {modalities: [cube], embed: 8}, graph: {latent: 2}}\n")
    assert build_config(parser.parse_args(["--config", str(sections)])).model.options == cfg.model.options
    with pytest.raises(Exception, match="model.options.modalities"):
        build_config(parser.parse_args(["--model", "multimodal", "--set", "model.options.modalities=[sound]"]))
    with pytest.raises(Exception, match="unknown option 'model.options.nope'"):
        build_config(parser.parse_args(["--model", "graph", "--set", "model.options.nope=1"]))


def test_a_number_yaml_reads_as_a_string_is_a_number():
    """YAML 1.1 reads 5e-4 (no dot) as a string; --set optim.lr=5e-4 still means 0.0005."""
    from astrobio.errors import ConfigError
    from astrobio.train.config import TrainConfig, parse_set
    from astrobio.train.resolve import apply_overrides

    cfg = apply_overrides(TrainConfig(), parse_set(["optim.lr=5e-4", "optim.weight_decay=1E-2"]))
    assert cfg.optim.lr == 0.0005 and cfg.optim.weight_decay == 0.01
    with pytest.raises(ConfigError, match="optim.lr must be a number, got 'fast'"):
        apply_overrides(TrainConfig(), parse_set(["optim.lr=fast"]))


def test_a_checkpoint_from_before_the_physics_baseline_or_the_linear_stage_resumes_without_them():
    from astrobio.train.resolve import config_from_dict, migrate_saved_options as _migrate_saved_options

    old = {"model": {"name": "datacube", "options": {"hidden": 16, "channels": [8, 4], "skip_channels": 8}}}
    cfg = config_from_dict(old)
    assert cfg.model.options.physics_baseline is True and cfg.model.options.linear_departure is True  # new runs
    _migrate_saved_options(cfg, old)
    # what that checkpoint was trained as
    assert cfg.model.options.physics_baseline is False and cfg.model.options.linear_departure is False
    between = {"model": {"name": "datacube", "options": {"physics_baseline": True}}}  # before the linear stage
    cfg = config_from_dict(between)
    _migrate_saved_options(cfg, between)
    assert cfg.model.options.physics_baseline is True and cfg.model.options.linear_departure is False
    new = {"model": {"name": "datacube", "options": {"physics_baseline": True, "linear_departure": True}}}
    cfg = config_from_dict(new)
    _migrate_saved_options(cfg, new)
    assert cfg.model.options.linear_departure is True


def test_an_old_top_level_physics_section_moves_into_the_datacube_options_and_is_dropped_elsewhere():
    old = {"model": {"name": "datacube", "options": {"hidden": 16}}, "physics": {"enabled": True, "kappa": 0.3}}
    cfg = config_from_dict(old)  # a checkpoint or config file written before round two
    assert cfg.model.options.physics.enabled is True and cfg.model.options.physics.kappa == 0.3
    assert "physics" not in cfg.to_dict() and cfg.to_dict()["model"]["options"]["physics"]["kappa"] == 0.3
    graph = config_from_dict({"model": {"name": "graph"}, "physics": {"enabled": False}})  # every old checkpoint had one
    assert graph.model.name == "graph" and not hasattr(graph.model.options, "physics")
    with pytest.raises(astrobio.ConfigError, match="unknown option 'model.options.physics'"):
        _config(["--model", "graph", "--physics-constraints"])


def test_train_config_loads_no_lightning():
    code = ("import sys, astrobio.train\n"
            "from astrobio.train import TrainConfig\n"
            "cfg = TrainConfig()\n"
            "assert cfg.model.name == 'datacube' and cfg.model.options.hidden > 0\n"
            "heavy = sorted(m for m in ('lightning', 'pytorch_lightning', 'torchmetrics') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)
