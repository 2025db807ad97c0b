"""The contenders of benches/loader.py: astrobio and its peers doing the same work per batch.

Peers appear twice: per sample (what a map-style torch Dataset does) and batched (the whole
batch as one selection, which lets each decode the batch's chunks concurrently: the peers at
their best). Each contender is `run() -> bytes of normalized float32 output` over all the benchmark's
batches, plus `check(batch) -> array` on one batch, compared with the zarr+numpy reference
before any timing. A peer that is not installed is reported as skipped, with the pip command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import astrobio
from astrobio import _core

Batch = list[int]
MEMORY_BATCHES = 8  # the in-memory decode bound holds this many batches of chunk bytes


class Normalizer:
    """numpy's version of the core's work on one sample: finite + range check, then (x - mean) / std."""

    def __init__(self, path: Path) -> None:
        m = astrobio.open_store(path).manifest
        norm = m["normalization"]["cubes"]["per_variable"]
        self.mean = np.asarray(norm["mean"], np.float32)[:, None, None, None]
        std = np.asarray(norm["std"], np.float64)
        self.inv = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 1.0).astype(np.float32)[:, None, None, None]
        rng = [v["valid_range"] for v in m["variables"]]
        self.lo = np.asarray([-np.inf if r[0] is None else r[0] for r in rng], np.float32)[:, None, None, None]
        self.hi = np.asarray([np.inf if r[1] is None else r[1] for r in rng], np.float32)[:, None, None, None]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not (np.isfinite(x).all() and (x >= self.lo).all() and (x <= self.hi).all()):
            raise astrobio.IntegrityError("a value is not finite or outside its valid range")
        return (x - self.mean) * self.inv


def chunk_path(path: Path, i: int) -> Path:
    return path / "cubes" / "c" / str(i) / "0" / "0" / "0" / "0"


class ZarrSamples:
    """Map-style dataset: sample i read through a zarr-python array, normalized, as a tensor."""

    def __init__(self, path: Path, pipeline: str | None = None) -> None:
        self.path, self.pipeline = path, pipeline
        self._arr: Any = None
        self.norm = Normalizer(path)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "pipeline": self.pipeline}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["pipeline"])  # type: ignore[misc]

    @property
    def arr(self) -> Any:
        if self._arr is None:
            import zarr

            conf = {"codec_pipeline.path": self.pipeline} if self.pipeline else {}
            with zarr.config.set(conf):  # the pipeline is chosen when the array is opened
                self._arr = zarr.open_array(store=str(self.path / "cubes"), mode="r")
        return self._arr

    def __len__(self) -> int:
        return int(self.arr.shape[0])

    def __getitem__(self, i: int) -> Any:
        import torch

        return torch.from_numpy(self.norm(self.arr[i]))


def batched_zarr(path: Path, pipeline: str | None = None) -> Callable[[Batch], np.ndarray]:
    """The whole batch as ONE orthogonal selection (`oindex`): zarr-python fetches and decodes
    the batch's chunks concurrently (its async pipeline), then numpy checks and normalizes."""
    samples = ZarrSamples(path, pipeline)
    return lambda idx: samples.norm(samples.arr.oindex[np.asarray(idx)])


def batched_tensorstore(path: Path, norm: Normalizer) -> Callable[[Batch], np.ndarray]:
    """The whole batch as one tensorstore index-array read (its own thread pool decodes concurrently)."""
    import tensorstore as ts

    arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "cubes")}}, read=True).result()
    return lambda idx: norm(arr.oindex[np.asarray(idx)].read().result())


def collated(getitem: Callable[[int], Any]) -> Callable[[Batch], np.ndarray]:
    from torch.utils.data import default_collate

    return lambda idx: default_collate([getitem(i) for i in idx]).numpy()


def tensorstore_getitem(path: Path, norm: Normalizer) -> Callable[[int], Any]:
    import tensorstore as ts
    import torch

    arr = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "cubes")}}, read=True).result()
    return lambda i: torch.from_numpy(norm(arr[i].read().result()))


def chunk_decoder(path: Path) -> Callable[[bytes, np.ndarray], None]:
    """Decompress a chunk's bytes (crc32c trailer stripped) into `out` with the store's own codec."""
    codecs = json.loads((path / "cubes" / "zarr.json").read_text())["codecs"]
    names = [c["name"] for c in codecs]
    if names == ["bytes", "blosc", "crc32c"]:
        import numcodecs

        blosc = numcodecs.Blosc()  # decoding needs no configuration: blosc's header has it
        return lambda data, out: blosc.decode(memoryview(data)[:-4], out=out)
    if names == ["bytes", "zstd", "crc32c"]:
        import zstandard

        dctx = zstandard.ZstdDecompressor()

        def zstd(data: bytes, out: np.ndarray) -> None:
            out.view(np.uint8).reshape(-1)[:] = np.frombuffer(dctx.decompress(memoryview(data)[:-4]), np.uint8)

        return zstd
    raise SystemExit(f"decode-only bound: no decoder for the codecs {names}")


def dataloader_rows(path: Path, batches: Sequence[Batch], workers: Sequence[int]) -> tuple[dict, dict, list]:
    import torch
    from torch.utils.data import DataLoader

    from astrobio.data import CubeBatchDataset

    runs, checks, closers = {}, {}, []
    for w in workers:
        # spawn: zarr-python's event loop thread does not survive fork; same for both, to be fair.
        ctx = "spawn" if w else None
        extra = {"persistent_workers": True, "multiprocessing_context": ctx, "prefetch_factor": 2} if w else {}
        ab = DataLoader(CubeBatchDataset(path, "per_variable"), sampler=batches, batch_size=None,
                        num_workers=w, **extra)
        zl = DataLoader(ZarrSamples(path), batch_sampler=batches, num_workers=w, **extra)
        for name, loader, get in ((f"astrobio DataLoader w={w}", ab, lambda b: b["cubes"]),
                                  (f"zarr+numpy DataLoader w={w}", zl, lambda b: b)):
            def run(loader: DataLoader = loader, get: Callable = get) -> int:
                return sum(get(b).numel() * 4 for b in loader)

            def check(idx: Batch, loader: DataLoader = loader, get: Callable = get) -> np.ndarray:
                assert idx == list(batches[0])
                for b in loader:  # the first batch of an epoch is batches[0]; starts the workers
                    return get(b).numpy().copy()
                raise AssertionError("empty loader")

            runs[name], checks[name] = run, check
        closers.append(lambda ab=ab, zl=zl: (ab._iterator and ab._iterator._shutdown_workers(),
                                              zl._iterator and zl._iterator._shutdown_workers()))
    del torch
    return runs, checks, closers


def contenders(path: Path, batches: list[Batch], workers: bool = True):
    """(runs, checks, skipped, closers): timed callables, checked callables, peers not installed.

    Every run (and the DataLoaders' samplers) iterates `batches` itself, so the caller may
    replace its contents between rounds."""
    sample_vals = int(np.prod(_core.BatchReader(str(path), "per_variable", 1).sample_shape))
    out = np.empty((len(batches[0]), sample_vals), np.float32)
    norm = Normalizer(path)
    skipped: dict[str, str] = {}
    per_batch: dict[str, Callable[[Batch], np.ndarray | None]] = {}

    reference = collated(ZarrSamples(path).__getitem__)
    for t in (1, 2):
        reader = _core.BatchReader(str(path), "per_variable", t)
        per_batch[f"astrobio-{t}t"] = lambda idx, r=reader: r.read_batch(idx, out.reshape(len(idx), *r.sample_shape))
    per_batch["zarr+numpy"] = reference
    per_batch["zarr batched"] = batched_zarr(path)
    try:
        import zarrs  # noqa: F401

        per_batch["zarrs+numpy"] = collated(ZarrSamples(path, "zarrs.ZarrsCodecPipeline").__getitem__)
        per_batch["zarrs batched"] = batched_zarr(path, "zarrs.ZarrsCodecPipeline")
    except ImportError:
        skipped["zarrs+numpy"] = skipped["zarrs batched"] = "not installed: pip install zarrs"
    try:
        per_batch["tensorstore+numpy"] = collated(tensorstore_getitem(path, norm))
        per_batch["tensorstore batched"] = batched_tensorstore(path, norm)
    except ImportError:
        skipped["tensorstore+numpy"] = skipped["tensorstore batched"] = "not installed: pip install tensorstore"

    decode = chunk_decoder(path)
    raw = out.reshape(len(batches[0]), -1)

    def decode_files(idx: Batch) -> np.ndarray:
        for slot, i in enumerate(idx):
            decode(chunk_path(path, i).read_bytes(), raw[slot])
        return raw

    mem_batches = [list(b) for b in batches[:MEMORY_BATCHES]]  # fixed: `batches` changes per round
    in_memory = {i: chunk_path(path, i).read_bytes() for b in mem_batches for i in b}

    def decode_memory(idx: Batch) -> np.ndarray:
        for slot, i in enumerate(idx):
            decode(in_memory[i], raw[slot])
        return raw

    src = np.ones_like(out)
    dst = np.empty_like(out)

    def memcpy(idx: Batch) -> np.ndarray:
        np.copyto(dst, src)
        return dst

    runs: dict[str, Callable[[], int]] = {}
    for name, fn in per_batch.items():
        runs[name] = lambda fn=fn: sum(fn(b).nbytes for b in batches)
    runs["decode-only (file)"] = lambda: sum(decode_files(b).nbytes for b in batches)
    runs["decode-only (memory)"] = lambda: sum(decode_memory(b).nbytes for b in mem_batches)
    runs["memcpy"] = lambda: sum(memcpy(b).nbytes for b in batches)

    first = list(batches[0])
    raw_ref = np.stack([ZarrSamples(path).arr[i].reshape(-1) for i in first])
    checks: dict[str, Any] = {name: (fn, reference) for name, fn in per_batch.items() if name != "zarr+numpy"}
    checks["decode-only (file)"] = (decode_files, lambda idx: raw_ref)
    checks["decode-only (memory)"] = (decode_memory, lambda idx: raw_ref)
    checks["memcpy"] = (memcpy, lambda idx: src)
    checks["_first_batch"] = first
    closers: list = []
    if workers:
        dl_runs, dl_checks, closers = dataloader_rows(path, batches, (0, 2))
        runs.update(dl_runs)
        checks.update({k: (fn, reference) for k, fn in dl_checks.items()})
    return runs, checks, skipped, closers


def check_against_reference(checks: dict[str, Any]) -> list[str]:
    """Compare each contender's output on the first batch with the reference; raise on a mismatch."""
    first = checks.pop("_first_batch")
    done = []
    for name, (fn, ref) in checks.items():
        got = np.asarray(fn(first)).reshape(-1)
        want = np.asarray(ref(first)).reshape(-1)
        # Same float32 operations in the same order: equal to the last bit is expected; the
        # tolerance only allows a different (but correct) rounding order.
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{name} differs from the reference")
        done.append(name)
    return done
