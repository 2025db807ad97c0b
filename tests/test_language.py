"""The language task: reaction name -> subsystem from cobra's real iJO1366 (ingested here through
the public metabolic ingest), the packaged MiniLM encoder with LoRA, the baselines, adapter
save/load, and the transformers/peft import check."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from astrobio import ConfigError, DataNotFoundError, DependencyError, IntegrityError
from astrobio.datasets.reactions import OTHER, SPLITS, load_reaction_subsystems, normalize_name
from astrobio.ingest.metabolic import ingest_metabolic
from astrobio.train.metrics import classification_metrics

pytest.importorskip("cobra")


def _cobra_data(name: str) -> Path:
    spec = importlib.util.find_spec("cobra")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0], "data", name)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # e_coli_core has no subsystems: it must add nothing
    models = {"iJO1366": _cobra_data("iJO1366.xml.gz"), "e_coli_core": _cobra_data("textbook.xml.gz")}
    return ingest_metabolic(models, tmp_path_factory.mktemp("lang") / "metabolic.zarr")


@pytest.fixture(scope="module")
def data(store: Path):
    return load_reaction_subsystems(store)


# ------------------------------------------------------------------ dataset and split
def test_split_is_stratified_without_leakage(data) -> None:
    keys = [normalize_name(t) for t in data.texts]
    assert len(set(keys)) == len(keys), "identical names must be deduplicated into one example"
    parts = {s: set(data.indices(s).tolist()) for s in SPLITS}
    assert set().union(*parts.values()) == set(range(len(data.texts)))
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not parts[a] & parts[b]
                assert not {keys[i] for i in parts[a]} & {keys[i] for i in parts[b]}
    for s in SPLITS:  # every class in every split
        assert set(np.unique(data.labels_of(s)).tolist()) == set(range(data.num_classes))
    info = data.info
    assert info["labelled_reactions_per_model"]["e_coli_core"] == 0
    assert info["labelled_reactions_per_model"]["iJO1366"] > 2000
    assert "glycerate kinase" in info["ambiguous_names_dropped"]
    assert "Unassigned" not in data.classes and info["unlabelled_dropped"] > 0
    assert min(info["class_counts"].values()) >= info["min_count"]


def test_split_is_deterministic_and_seeded(store: Path, data) -> None:
    again = load_reaction_subsystems(store)
    assert again.texts == data.texts and again.classes == data.classes
    assert all(np.array_equal(again.splits[s], data.splits[s]) for s in SPLITS)
    other = load_reaction_subsystems(store, seed=1)
    assert not np.array_equal(other.splits["test"], data.splits["test"])
    assert {s: len(v) for s, v in other.splits.items()} == {s: len(v) for s, v in data.splits.items()}


def test_rare_classes_merge_into_other_or_drop(store: Path) -> None:
    merged = load_reaction_subsystems(store, min_count=40)
    dropped = load_reaction_subsystems(store, min_count=40, rare="drop")
    assert OTHER in merged.classes and OTHER not in dropped.classes
    assert set(dropped.classes) == set(merged.classes) - {OTHER}
    rare = merged.info["rare_classes"]
    assert rare and not set(rare) & set(merged.classes)
    n_other = merged.info["class_counts"][OTHER]
    assert len(merged.texts) == len(dropped.texts) + n_other
    with pytest.raises(ConfigError):
        load_reaction_subsystems(store, min_count=2)


def test_missing_store_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"astrobio datasets build default --parts metabolic"):
        load_reaction_subsystems(tmp_path / "nope.zarr")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_metrics_equal_scikit_learn(pairs: list[tuple[int, int]]) -> None:
    from sklearn.metrics import accuracy_score, f1_score

    t, p = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
    m = classification_metrics(t, p, 5)
    assert m["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert m["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))


# ------------------------------------------------------------------ baselines
def test_baselines_on_the_same_split(data) -> None:
    from astrobio.train.tasks.language import majority_baseline, tfidf_baseline

    maj = majority_baseline(data)
    top = int(np.bincount(data.labels_of("train")).argmax())
    assert all((v == top).all() and len(v) == len(data.indices(s)) for s, v in maj.items())
    preds, info = tfidf_baseline(data, ("val", "test"), grid=[(10.0, "balanced")])
    assert info["C"] == 10.0 and len(info["grid"]) == 1
    for s in ("val", "test"):
        assert preds[s].shape == data.labels_of(s).shape
        tfidf = classification_metrics(data.labels_of(s), preds[s], data.num_classes)
        majority = classification_metrics(data.labels_of(s), maj[s], data.num_classes)
        assert tfidf["accuracy"] > majority["accuracy"] + 0.3
        assert tfidf["macro_f1"] > majority["macro_f1"] + 0.3


# ------------------------------------------------------------------ model, fine-tune, adapter
@pytest.fixture(scope="module")
def tokenizer():
    from astrobio.models.language import load_tokenizer

    return load_tokenizer()


def _mean_loss(model, tokenizer, texts: list[str], labels: np.ndarray) -> float:
    from astrobio.train.tasks.language import predict_language

    logits = torch.from_numpy(predict_language(model, tokenizer, texts, max_length=32))
    return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)))


def test_tiny_finetune_learns_and_the_adapter_reproduces_it(store: Path, data, tokenizer, tmp_path: Path) -> None:
    """A tiny fine-tune through the trainer (the one training path): the LoRA + head learn, and
    an adapter of the trained model reloads with bit-identical logits."""
    import lightning as L

    from astrobio.models.language import LoraSettings, build_language_model, load_adapter, save_adapter
    from astrobio.train import TrainConfig, apply_overrides, load_checkpoint, train
    from astrobio.train.tasks.language import predict_language

    small = data.subset({"train": 32, "val": 16, "test": 16})
    settings_ = LoraSettings(r=4, alpha=8, max_length=32)
    cfg = apply_overrides(TrainConfig.for_model("language"), {
        "model": {"options": {"r": 4, "alpha": 8, "max_length": 32, "head_lr": 3e-2, "class_weight": "none",
                              "subset": [32, 16, 16]}},
        "data": {"graphs": str(store), "batch_size": 16}, "optim": {"lr": 5e-3, "warmup_fraction": 0.0},
        "trainer": {"max_epochs": 3, "patience": 3, "output_dir": str(tmp_path / "run"), "progress_bar": False,
                    "logger": "none", "plots": False}})
    # the model the run starts from: the trainer seeds, then the task builds it
    L.seed_everything(0, verbose=False)
    model = build_language_model(data.num_classes, settings_)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    counts = model.trainable_parameters()
    assert counts["lora"] + counts["head"] < 0.01 * counts["total"]
    texts, labels = small.texts_of("train"), small.labels_of("train")
    before = _mean_loss(model, tokenizer, texts, labels)

    result = train(cfg)
    assert len(result.history["steps"]) == 6 and result.history["steps"][-1][2] == 5  # 2 steps per epoch, 3 epochs
    epochs = result.history["epochs"]
    assert len(epochs) == 3 and all({"val_acc", "val_f1", "val_loss"} <= set(e) for e in epochs)
    assert all(np.isfinite(e["val_f1"]) for e in epochs)
    assert result.summary["adapter"]["reproduced_after_reload"]
    state = load_checkpoint(result.last_checkpoint)["state_dict"]  # the model after the last epoch
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()}, strict=False)
    after = _mean_loss(model, tokenizer, texts, labels)
    assert after < 0.7 * before, (before, after)

    adapter = save_adapter(model, tmp_path / "adapter", classes=data.classes, settings=settings_, extra={"note": "test"})
    files = {p.name: p.stat().st_size for p in adapter.iterdir()}
    assert set(files) == {"adapter_config.json", "adapter_model.safetensors", "head.safetensors", "astrobio_adapter.json"}
    assert sum(files.values()) < 1_000_000  # the base encoder alone is 90 MB
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k for k in keys)
    assert not list(tmp_path.glob(".adapter*")), "no temp folder left behind"

    reloaded, meta = load_adapter(adapter)
    assert meta["classes"] == data.classes and meta["extra"] == {"note": "test"}
    test_texts = small.texts_of("val") + small.texts_of("test")
    a = predict_language(model, tokenizer, test_texts, max_length=32)
    b = predict_language(reloaded, tokenizer, test_texts, max_length=32)
    assert np.array_equal(a, b), "the reloaded adapter must give bit-identical logits"

    # incomplete folder or another base encoder: refused with an astrobio error
    meta_path = adapter / "astrobio_adapter.json"
    record = json.loads(meta_path.read_text())
    record["base_model"]["digest"] = "sha256:0"
    meta_path.write_text(json.dumps(record))
    with pytest.raises(IntegrityError, match="another base encoder"):
        load_adapter(adapter)
    (adapter / "head.safetensors").unlink()
    with pytest.raises(DataNotFoundError, match="head.safetensors"):
        load_adapter(adapter)


# ------------------------------------------------------------------ the transformers/peft check
def test_missing_peft_is_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from astrobio.models.language import build_language_model, check_llm_stack

    monkeypatch.setitem(sys.modules, "peft", None)  # import peft -> ImportError
    with pytest.raises(DependencyError) as e:
        check_llm_stack()
    msg = str(e.value)
    assert "\n" not in msg and 'pip install "astrobio[llm]"' in msg and "peft" in msg
    with pytest.raises(DependencyError):
        build_language_model(3)


def test_incompatible_pair_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from astrobio.models.language import check_llm_stack

    class OldPeft(types.ModuleType):  # what an old peft does against transformers 5
        def __getattr__(self, name: str):
            raise ImportError("cannot import name 'EncoderDecoderCache' from 'transformers' (/site-packages/"
                              "transformers/__init__.py)\nmore lines of the traceback")

    monkeypatch.setitem(sys.modules, "peft", OldPeft("peft"))
    with pytest.raises(DependencyError) as e:
        check_llm_stack()
    msg = str(e.value)
    assert "\n" not in msg and "EncoderDecoderCache" in msg and "astrobio[llm]" in msg

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(DependencyError, match="transformers"):
        check_llm_stack()


def test_working_pair_passes_and_import_astrobio_stays_light() -> None:
    from astrobio.models.language import check_llm_stack

    transformers_v, peft_v = check_llm_stack()
    assert transformers_v and peft_v
    code = ("import sys, astrobio, astrobio.models, astrobio.train, astrobio.datasets.reactions, astrobio.models.language; "
            "heavy = [m for m in ('transformers', 'peft', 'sklearn', 'lightning') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
