"""The language model's encoder stored as float16 safetensors (astrobio.models.encoder_weights):
the export, its parts, the loader's `ASTROBIO_TEXT_ENCODER`, and the embeddings of real reaction
names (iJO1366, through the metabolic ingest) against the packaged float32 encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from astrobio import ConfigError, DataNotFoundError
from astrobio.datasets.reactions import load_reaction_subsystems
from astrobio.models import encoder_weights as ew

pytest.importorskip("transformers")
from astrobio.models.language import _base_encoder, encoder_dir, load_tokenizer  # noqa: E402

#: the stated tolerance: every name's embedding within 3e-3 of its norm (relative L2; float16
#: rounds each stored weight by at most 2^-11 = 4.9e-4) and cosine similarity above 0.99999
REL_TOL = 3e-3
COS_MIN = 0.99999
NAMES = 400  # reaction names compared (the first of the sorted deduplicated list)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoder")
    return {"single": ew.export_compact_encoder(root / "f16"),
            "parts": ew.export_compact_encoder(root / "f16-parts", part_mb=24)}


def _embed(path: Path, texts: list[str]) -> torch.Tensor:
    model = _base_encoder(path).eval()
    assert all(p.dtype == torch.float32 for p in model.parameters())  # widened when built
    enc = load_tokenizer(path)(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        states = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    return (states * mask).sum(1) / mask.sum(1)


def test_the_export_stores_float16_in_half_the_bytes(exported):
    from safetensors import safe_open

    original = sum(f.stat().st_size for f in ew.weight_files(encoder_dir()))
    for form, path in exported.items():
        files = ew.weight_files(path)
        assert sum(f.stat().st_size for f in files) < 0.51 * original
        for f in files:
            with safe_open(str(f), "pt") as st:
                dtypes = {st.get_tensor(k).dtype for k in st.keys()}
            assert torch.float16 in dtypes and torch.float32 not in dtypes
        meta = json.loads((path / "astrobio_encoder.json").read_text())
        assert meta["dtype"] == "float16" and meta["source"]["digest"] == ew.encoder_digest(encoder_dir())
        assert (path / "tokenizer.json").is_file() and (path / "config.json").is_file()
    parts = ew.weight_files(exported["parts"])
    assert len(parts) >= 2 and all(f.stat().st_size <= 24e6 + 1e5 for f in parts)  # each travels alone
    assert ew.encoder_digest(exported["single"]) != ew.encoder_digest(encoder_dir())  # another base for adapters


def test_float16_weights_give_the_same_embeddings_within_tolerance_on_real_reaction_names(exported, ijo_graphs):
    texts = list(load_reaction_subsystems(ijo_graphs).texts)[:NAMES]
    want = _embed(encoder_dir(), texts)
    for form, path in exported.items():
        got = _embed(path, texts)
        rel = (got - want).norm(dim=1) / want.norm(dim=1)
        cos = torch.nn.functional.cosine_similarity(got, want)
        assert rel.max().item() < REL_TOL, form
        assert cos.min().item() > COS_MIN, form
    assert torch.equal(_embed(exported["parts"], texts[:32]), _embed(exported["single"], texts[:32]))


def test_the_environment_variable_points_the_language_model_at_the_export(exported, monkeypatch, tmp_path):
    monkeypatch.setenv(ew.ENV, str(exported["parts"]))
    assert encoder_dir() == exported["parts"]
    monkeypatch.setenv(ew.ENV, str(tmp_path))
    with pytest.raises(DataNotFoundError, match=ew.ENV):
        encoder_dir()
    monkeypatch.delenv(ew.ENV)
    assert encoder_dir() != exported["parts"]


def test_a_missing_part_or_a_bad_request_is_one_clear_error(exported, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(exported["parts"], broken)
    ew.weight_files(broken)[-1].unlink()
    with pytest.raises(DataNotFoundError, match="parts"):
        ew.weight_files(broken)
    with pytest.raises(ConfigError):
        ew.export_compact_encoder(tmp_path / "x", part_mb=0)
    with pytest.raises(DataNotFoundError):
        ew.export_compact_encoder(tmp_path / "y", src=tmp_path)
    assert ew.main([str(tmp_path / "z"), "--src", str(tmp_path)]) == 1
