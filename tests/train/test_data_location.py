"""The data section's one location: older keys (`data.store`, `data.graphs`, `data.ref`) of
configs and checkpoints migrate into `data.location`, picked by the model's data kind when a
layer names both; the Python attribute names still set it; the CLI flags `--data`/`--store` too."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astrobio.errors import ConfigError
from astrobio.train.cli import build_config, build_parser
from astrobio.train.config import TrainConfig, migrate_data_section
from astrobio.train.resolve import apply_overrides, config_from_dict
from astrobio.train.location import is_data_ref
from astrobio.train.tasks import get_task


@pytest.mark.parametrize("model, expected", [("datacube", "c.zarr"), ("multimodal", "c.zarr"), ("graph", "g.zarr")])
def test_a_layer_naming_both_stores_keeps_the_one_of_the_models_kind(model: str, expected: str) -> None:
    cfg = apply_overrides(TrainConfig.for_model(model), {"data": {"store": "c.zarr", "graphs": "g.zarr", "batch_size": 4}})
    assert cfg.data.location == expected and cfg.data.batch_size == 4
    assert get_task(model).data_kind in ("cube", "graph")


def test_old_checkpoint_configs_load_and_the_explicit_location_wins() -> None:
    old = TrainConfig.for_model("graph").to_dict()
    old["data"] = {k: v for k, v in old["data"].items() if k != "location"} | {"store": None, "graphs": "/d/g.zarr", "ref": None}
    assert config_from_dict(old).data.location == "/d/g.zarr"
    old["data"]["ref"] = "nets@v2"
    assert config_from_dict(old).data.location == "nets@v2"  # the registered version named the store
    assert migrate_data_section({"location": "x.zarr", "store": "y.zarr"}, lambda: "cube") == {"location": "x.zarr"}
    assert "store" not in TrainConfig().to_dict()["data"] and "location" in TrainConfig().to_dict()["data"]
    with pytest.raises(ConfigError, match="unknown option 'data.stores'"):
        apply_overrides(TrainConfig(), {"data": {"stores": "x"}})


def test_python_names_and_flags_set_the_one_location() -> None:
    cfg = TrainConfig()
    cfg.data.store = "a.zarr"
    assert cfg.data.location == cfg.data.graphs == cfg.data.ref == "a.zarr"
    for flag in ("--store", "--data"):
        args = build_parser().parse_args([flag, "climate@v3"])
        assert build_config(args).data.location == "climate@v3"


@given(st.text(min_size=1, max_size=40))
def test_only_name_at_version_is_a_registered_reference(text: str) -> None:
    ref = is_data_ref(text)
    assert ref == ("@" in text and "/" not in text and "://" not in text)
    assert is_data_ref(f"{text.replace('/', '').replace('@', '') or 'x'}@v1")
    assert not is_data_ref(f"s3://b/{text}@v1") and not is_data_ref(f"runs/{text}@v1")
