"""Writing a cube store: runs appended one by one into a group built by the writer core
(`stores._group.GroupWriter`: temporary sibling, manifest last, fsync, rename), then committed
with statistics, split, normalization and digests (see docs/store-format.md)."""

from __future__ import annotations

import datetime as _dt
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec

from .._stats import Moments
from .._version import __version__
from ..errors import ConfigError, IntegrityError
from ._group import GroupWriter
from .location import name_of, store_location
from .cube import FORMAT, FORMAT_VERSION, Variable, digest
from .splits import complete_split, split_problem
from .cube_coords import write_coordinates

__all__ = ["CubeWriter", "write_cube", "StoreWriter", "write_store", "COMPRESSIONS", "DEFAULT_COMPRESSION", "RUN_ID_PATTERN"]

# Run ids become parts of paths and keys elsewhere: no separators, no leading dot.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# Compressions a store may be written with (docs/store-format.md; measured in
# docs/performance.md): byte-shuffled lz4 decodes ~4x faster than plain zstd on GCM float32
# fields and still compresses them better, so it is the default for a loader's store.
COMPRESSIONS = {"blosc-lz4": 5, "blosc-zstd": 3, "zstd": 3}
DEFAULT_COMPRESSION = "blosc-lz4"


def _codecs(compression: str, level: int | None) -> dict[str, Any]:
    if compression not in COMPRESSIONS:
        raise ConfigError(f"unknown compression {compression!r}; choose one of {sorted(COMPRESSIONS)}")
    level = COMPRESSIONS[compression] if level is None else int(level)
    if compression == "zstd":
        stage: Any = ZstdCodec(level=level)
    else:
        # Byte shuffle groups the float32 exponent bytes together; one block per chunk
        # decision left to blosc (blocksize 0).
        stage = BloscCodec(typesize=4, cname=compression.removeprefix("blosc-"), clevel=level, shuffle="shuffle", blocksize=0)
    return {"serializer": BytesCodec(endian="little"), "compressors": [stage, Crc32cCodec()]}


class CubeWriter:
    """Build a store run by run, then `commit()` it atomically.

    >>> with CubeWriter(path, variables=vs, sample_shape=(5, 10, 32, 64)) as w:  # doctest: +SKIP
    ...     w.add_run("earth-like", cubes)          # cubes: [T, V, L, H, W]
    ...     w.commit(split={"train": ["earth-like"]})

    `compression` picks the chunk codec ("blosc-lz4", the default; "blosc-zstd"; "zstd"), each
    followed by crc32c; `compression_level` overrides its level. `shard_samples` packs that many
    consecutive samples into one object (for stores of small samples on object storage).

    Leaving the block on an exception removes the partial build; the previous store at `path`
    (if any) is untouched until the new one is complete.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        variables: Sequence[Variable],
        sample_shape: tuple[int, int, int, int],
        params: Sequence[Variable] = (),
        coords: Mapping[str, Any] | None = None,
        name: str = "",
        provenance: Mapping[str, Any] | None = None,
        compression: str = DEFAULT_COMPRESSION,
        compression_level: int | None = None,
        shard_samples: int | None = None,
    ) -> None:
        self.path = store_location(path)
        if shard_samples is not None and shard_samples < 1:
            raise ConfigError(f"shard_samples must be a positive number of samples, not {shard_samples}")
        if compression not in COMPRESSIONS:
            raise ConfigError(f"unknown compression {compression!r}; choose one of {sorted(COMPRESSIONS)}")
        if len(variables) != sample_shape[0]:
            raise ConfigError(f"{len(variables)} variables given for a sample shape {sample_shape}")
        if len({v.name for v in variables}) != len(variables):
            raise ConfigError("variable names must be unique")
        self.variables = list(variables)
        self.params = list(params)
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.coords = dict(coords or {})
        self.name = name or name_of(self.path)
        self.provenance = dict(provenance or {})
        self._runs: list[dict[str, Any]] = []
        self._run_moments: dict[str, tuple[Moments, Moments]] = {}
        self._n = 0
        self._group = GroupWriter(self.path)
        v, lv, h, w = self.sample_shape
        # One chunk per sample; with `shard_samples`, that many consecutive samples' chunks are
        # packed into one object (zarr v3 sharding, index at the end with its own crc32c), so
        # stores of small samples make fewer, larger objects (docs/object-storage.md).
        shards = {"shards": (shard_samples, v, lv, h, w)} if shard_samples else {}
        self._cubes = self._group.create_array(
            "cubes", shape=(0, v, lv, h, w), chunks=(1, v, lv, h, w), dtype="float32",
            fill_value=float("nan"), dimension_names=("sample", "variable", "level", "lat", "lon"),
            **_codecs(compression, compression_level), **shards,
        )
        self._params = None
        if self.params:
            self._params = self._group.create_array(
                "params", shape=(0, len(self.params)), chunks=(65536, len(self.params)), dtype="float32",
                fill_value=float("nan"), dimension_names=("sample", "param"), **_codecs(compression, compression_level),
            )
    def __enter__(self) -> "CubeWriter":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None or not self._group.done:
            self.abort()

    def abort(self) -> None:
        """Discard the partial build (the store at `path`, if any, is untouched)."""
        self._group.abort()

    def add_run(
        self,
        run_id: str,
        cubes: np.ndarray,
        params: np.ndarray | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one run: `cubes` [T, V, L, H, W], `params` [T, P] (or [P], repeated)."""
        if self._group.done:
            raise ConfigError("this writer was already committed or aborted")
        if not RUN_ID_PATTERN.match(run_id):
            raise ConfigError(f"run id {run_id!r} must match {RUN_ID_PATTERN.pattern}")
        if run_id in self._run_moments:
            raise ConfigError(f"run id {run_id!r} was already added")
        cubes = np.ascontiguousarray(cubes, dtype=np.float32)
        if cubes.ndim != 5 or cubes.shape[1:] != self.sample_shape or cubes.shape[0] == 0:
            raise ConfigError(f"run {run_id!r}: cubes have shape {cubes.shape}, expected [T>0, *{self.sample_shape}]")
        t = cubes.shape[0]
        for vi, var in enumerate(self.variables):
            fault = var.check(cubes[:, vi])
            if fault is not None:
                i, x, why = fault
                sample = i // cubes[0, vi].size
                raise IntegrityError(
                    f"variable {var.name!r} has a value {x} {why}" if "range" in why else f"variable {var.name!r} has a value {why}",
                    run=run_id, sample=self._n + sample,
                )
        cube_m = Moments(self.sample_shape[:2])
        cube_m.update(cubes.reshape(t, *self.sample_shape[:2], -1), axes=(0, 3))
        param_m = Moments((len(self.params),))
        if self._params is not None:
            if params is None:
                raise ConfigError(f"run {run_id!r}: this store has parameters {[p.name for p in self.params]}; pass params")
            params = np.asarray(params, dtype=np.float32)
            if params.ndim == 1:
                params = np.broadcast_to(params, (t, params.shape[0]))
            if params.shape != (t, len(self.params)):
                raise ConfigError(f"run {run_id!r}: params have shape {params.shape}, expected ({t}, {len(self.params)})")
            for pi, p in enumerate(self.params):
                fault = p.check(params[:, pi])
                if fault is not None:
                    raise IntegrityError(f"parameter {p.name!r} is {fault[1]}, {fault[2]}", run=run_id, sample=self._n + fault[0])
            param_m.update(params, axes=(0,))
            self._params.resize((self._n + t, len(self.params)))
            self._params[self._n : self._n + t] = params
        elif params is not None:
            raise ConfigError("this store was declared without parameters")
        self._cubes.resize((self._n + t, *self.sample_shape))
        self._cubes[self._n : self._n + t] = cubes
        self._runs.append({"id": run_id, "start": self._n, "count": t, "attrs": dict(attrs or {})})
        self._run_moments[run_id] = (cube_m, param_m)
        self._n += t

    def commit(self, split: Mapping[str, Sequence[str]] | None = None) -> Path | str:
        """Write the manifest last, fsync, and move the store into place (or upload it, for an
        s3:// URL, manifest last). Returns its path or URL.

        `split` maps 'train'/'val'/'test' to run ids (a run in at most one split); by default
        every run is in 'train'. Normalization statistics come from the train runs only.
        """
        if not self._runs:
            raise ConfigError("a store needs at least one run; nothing was added")
        split = self._check_split(split)
        # CF coordinate arrays for xarray; derived, not digested (stores.cube_coords)
        write_coordinates(self._group.root, self.coords, self.sample_shape, self.variables, self.params, self._runs)
        return self._group.commit(self._manifest(split))

    def _check_split(self, split: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
        ids = [r["id"] for r in self._runs]
        if split is None:
            return complete_split({"train": ids})
        problem = split_problem({k: list(v) if isinstance(v, tuple) else v for k, v in split.items()}
                                if isinstance(split, Mapping) else split, ids)
        if problem:
            raise ConfigError(problem)
        return complete_split(split)

    def _manifest(self, split: dict[str, list[str]]) -> dict[str, Any]:
        scope = split["train"] or [r["id"] for r in self._runs]
        def pooled(ids: Sequence[str], which: int) -> Moments:
            acc = Moments(self._run_moments[ids[0]][which].shape)
            for rid in ids:
                acc = acc.merge(self._run_moments[rid][which])
            return acc
        all_ids = [r["id"] for r in self._runs]
        cube_all, cube_norm = pooled(all_ids, 0), pooled(scope, 0)
        norm: dict[str, Any] = {
            "scope": "train" if split["train"] else "all",
            "cubes": {
                "per_variable": _mean_std(cube_norm.reduce(1)),
                "per_level": _mean_std(cube_norm),
            },
        }
        stats: dict[str, Any] = {
            "cubes": {
                "per_variable": {**cube_all.reduce(1).to_json(), "nan_count": [0] * len(self.variables)},
                "per_level": cube_all.to_json(),
            }
        }
        if self.params:
            norm["params"] = _mean_std(pooled(scope, 1))
            stats["params"] = pooled(all_ids, 1).to_json()
        digests = self._group.digests()
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "sample_shape": list(self.sample_shape),
            "n_samples": self._n,
            "dims": ["sample", "variable", "level", "lat", "lon"],
            "variables": [v.to_json() for v in self.variables],
            "params": [p.to_json() for p in self.params],
            "coords": self.coords,
            "runs": self._runs,
            "split": split,
            "stats": stats,
            "normalization": norm,
            "digests": digests,
        }
        body["content_digest"] = digest(body)
        auto = _tool_versions()
        body["provenance"] = {**self.provenance, **auto, "tools": {**self.provenance.get("tools", {}), **auto["tools"]}}
        body["complete"] = True
        return body


def _mean_std(m: Moments) -> dict[str, list]:
    return {"mean": m.mean.tolist(), "std": m.std.tolist()}


def _tool_versions() -> dict[str, Any]:
    return {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tools": {"astrobio": __version__, "zarr": zarr.__version__, "numpy": np.__version__, "python": platform.python_version()},
    }


def write_cube(
    path: str | Path,
    runs: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray, np.ndarray | None]],
    *,
    variables: Sequence[Variable],
    params: Sequence[Variable] = (),
    split: Mapping[str, Sequence[str]] | None = None,
    **kwargs: Any,
) -> Path | str:
    """Write a whole store in one call. `runs` maps run id -> cubes [T, V, L, H, W], or is a
    sequence of (run id, cubes, params) triples. Returns the store's path."""
    items = [(k, v, None) for k, v in runs.items()] if isinstance(runs, Mapping) else list(runs)
    if not items:
        raise ConfigError("a store needs at least one run; none were given")
    sample_shape = tuple(np.shape(items[0][1])[1:])
    if len(sample_shape) != 4:
        raise ConfigError(f"cubes must be [T, V, L, H, W]; got shape {np.shape(items[0][1])}")
    with CubeWriter(path, variables=variables, params=params, sample_shape=sample_shape, **kwargs) as w:  # type: ignore[arg-type]
        for run_id, cubes, p in items:
            w.add_run(run_id, cubes, p)
        return w.commit(split)


#: the older names (the README, user code and the rest of astrobio use them): the same objects
StoreWriter = CubeWriter
write_store = write_cube
