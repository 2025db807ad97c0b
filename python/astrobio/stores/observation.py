"""Observation stores (kind and format "observation"): survey image patches around detections,
positives and negatives, with one metadata column per field.

Layout (one zarr v3 group, written by the writer core `stores._group`, manifest last):
  patches/        a complete cube store ("astrobio.store") [N, 6, 1, H, W] float32 that the Rust
                  core reads, verifies, normalizes and collates like any cube: channels science,
                  reference, difference, then one validity mask per image channel (1 = a real
                  pixel, 0 = missing: NaN in the survey product, outside the image, or a channel
                  the product lacks; the value there is the patch's median, so nothing reads as a
                  silent zero). Runs are sky cells, the split is by sky cell (`stores._sky`).
  <column>        one array per metadata column (`ingest._patches.COLUMNS`), one row per patch.

Normalization is per channel and robust: median and IQR / 1.349 of the train split's real pixels
(written into the cube manifest the core normalizes with). Stamps hold saturated stars at 1e4-1e5
DN beside a sky of a few hundred; a mean and standard deviation would follow those few bright
pixels and squash the faint sources a detector is for. The masks are left as they are (0 / 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, IntegrityError
from ..ingest._patches import CHANNELS, COLUMNS, Patches
from . import _remote, _sky
from ._group import GroupWriter, content_digest, read_array, read_group_manifest, read_manifest
from .cube import SPLITS, Store, Variable, open_store
from .cube import digest as cube_digest
from .cube_writer import StoreWriter
from .kinds import Description, histogram, moments

__all__ = ["FORMAT", "FORMAT_VERSION", "HINT", "MASKS", "ObservationStore", "open_observations", "write_observations",
           "digest", "KIND", "robust_normalization"]

FORMAT = "observation"
FORMAT_VERSION = 1
HINT = ("Collect observations with `astrobio ingest observations OUT` or build the default part with "
        "`astrobio datasets build default --parts observations`")
MASKS = tuple(f"{c}_valid" for c in CHANNELS)
NORMALIZATION_RULE = "per channel: median and IQR/1.349 of the train split's real pixels; masks unscaled"
#: patches packed per object (zarr v3 sharding): a batch reads a few shard files instead of one
#: file per patch (benches/patches.py: 1.5x faster batches of 64 on local disk)
SHARD_PATCHES = 64


def digest(manifest: Mapping[str, Any]) -> str:
    """The content digest of an observation manifest (covers the patches' cube digest)."""
    return content_digest(manifest)


def robust_normalization(pixels: np.ndarray) -> dict[str, list[float]]:
    """Per-channel (median, IQR/1.349) of the finite pixels of `pixels` [N, C, H, W]; a channel
    without spread keeps scale 1, one without any real pixel is centred on 0."""
    mean, std = [], []
    for c in range(pixels.shape[1]):
        values = pixels[:, c][np.isfinite(pixels[:, c])]
        if values.size == 0:
            mean.append(0.0), std.append(1.0)
            continue
        q25, q50, q75 = np.percentile(values, [25, 50, 75])
        mean.append(float(q50))
        std.append(float((q75 - q25) / 1.349) if q75 > q25 else 1.0)
    return {"mean": mean + [0.0] * len(MASKS), "std": std + [1.0] * len(MASKS)}


class _PatchWriter(StoreWriter):
    """The cube writer with the robust normalization in place of the moments'."""

    def __init__(self, path: Path, robust: dict[str, list[float]], **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self._robust = robust

    def _manifest(self, split: dict[str, list[str]]) -> dict[str, Any]:
        body = super()._manifest(split)
        r = self._robust
        body["normalization"]["cubes"] = {"per_variable": r, "per_level": {"mean": [[m] for m in r["mean"]],
                                                                          "std": [[s] for s in r["std"]]}}
        body["content_digest"] = cube_digest(body)
        return body


def _cube(patches: Patches, fill: np.ndarray) -> np.ndarray:
    """[N, 6, 1, H, W]: values with missing pixels set to the patch's channel median (the
    train median `fill` when the channel has no real pixel), then the validity masks."""
    px = patches.pixels
    valid = np.isfinite(px)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels: handled below
            med = np.nanmedian(px.reshape(*px.shape[:2], -1), axis=2)
    med = np.where(np.isfinite(med), med, fill[None, :])
    values = np.where(valid, px, med[:, :, None, None])
    return np.concatenate([values, valid.astype(np.float32)], axis=1)[:, :, None].astype(np.float32)


def write_observations(out: str | Path, patches: Patches, *, request: Mapping[str, Any], provenance: Mapping[str, Any],
                       name: str = "") -> Path | str:
    """Write `patches` as the observation store at `out`, split by sky cell (`stores._sky`);
    returns its path. ConfigError when nothing is left to write."""
    if len(patches) == 0:
        raise ConfigError("the selection holds no patches: nothing to write")
    size = patches.pixels.shape[-1]
    cols = patches.columns
    # the patch width in degrees (ZTF: 1.012 arcsec per pixel)
    split, cell, straddle = _sky.assign(cols["ra"], cols["dec"], cols["object_id"], size * 1.012 / 3600)
    dropped = dict(patches.dropped)
    if straddle.any():
        dropped["overlaps a patch of another split (near a sky-cell boundary)"] = int(straddle.sum())
    keep = np.flatnonzero(~straddle)
    order = keep[np.lexsort((keep, cell[keep]))]  # runs = sky cells, contiguous
    patches = patches.take(order)
    split = [split[i] for i in order]
    cell = cell[order]
    if len(patches) == 0:
        raise ConfigError("every selected patch straddles two splits' sky cells: nothing to write")
    train = np.array([s == "train" for s in split])
    robust = robust_normalization(patches.pixels[train] if train.any() else patches.pixels)
    cube = _cube(patches, np.asarray(robust["mean"][:len(CHANNELS)], np.float32))
    variables = [Variable(c, "DN", long_name=f"{c} image (survey data numbers)") for c in CHANNELS] + [
        Variable(m, "1", (0.0, 1.0), long_name=f"1 where the {c} pixel is real, 0 where it is missing") for m, c in zip(MASKS, CHANNELS)]
    out = _remote.store_location(out)
    runs: dict[int, list[int]] = {}
    for i, c in enumerate(cell):
        runs.setdefault(int(c), []).append(i)
    run_split = {f"hpx{_sky.NSIDE}-{c}": split[idx[0]] for c, idx in runs.items()}
    with GroupWriter(out) as g:
        with _PatchWriter(Path(g.tmp) / "patches", robust, variables=variables, sample_shape=(len(variables), 1, size, size),
                          name="patches", shard_samples=SHARD_PATCHES) as w:
            for c, idx in runs.items():
                w.add_run(f"hpx{_sky.NSIDE}-{c}", cube[idx[0]:idx[-1] + 1])
            w.commit({s: [r for r, v in run_split.items() if v == s] for s in SPLITS})
        patch_manifest = open_store(Path(g.tmp) / "patches").manifest
        for k, (dtype, _) in COLUMNS.items():
            data = patches.columns[k]
            g.array(k, data if dtype == "string" else np.asarray(data, dtype), ("patch",))
        g.array("split", split, ("patch",))
        labels = np.asarray(patches.columns["label"])
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name or _remote.name_of(out),
            "n_patches": len(patches),
            "patch_size": size,
            "channels": list(CHANNELS),
            "masks": list(MASKS),
            "columns": [{"name": k, "dtype": t, "description": d} for k, (t, d) in COLUMNS.items()],
            "counts": {s: {"positive": int(((labels == 1) & (np.array(split) == s)).sum()),
                           "negative": int(((labels == 0) & (np.array(split) == s)).sum())} for s in SPLITS},
            "split_rule": _sky.RULE,
            "normalization": {"rule": NORMALIZATION_RULE, **robust},
            "request": dict(request),
            "dropped": dropped,
            "patches": {"path": "patches", "content_digest": patch_manifest["content_digest"]},
            "digests": g.digests(),
        }
        manifest["content_digest"] = digest(manifest)
        manifest["provenance"] = dict(provenance)
        return g.commit(manifest)


@dataclass
class ObservationStore:
    """An opened observation store: `columns` (one row per patch, with its `split`), the
    manifest, and the patches as a cube store the core reads (`patches_path`)."""

    path: Path
    manifest: dict[str, Any]
    columns: pd.DataFrame

    @property
    def patches_path(self) -> Path:
        return self.path / "patches"

    def cube(self) -> Store:
        """The patches' cube store (opened, manifest checked by the Rust core)."""
        return open_store(self.patches_path)

    def samples(self, split: str) -> np.ndarray:
        """Indices of the patches in `split`."""
        return np.flatnonzero(self.columns["split"].to_numpy() == split)

    def __len__(self) -> int:
        return int(self.manifest["n_patches"])


def open_observations(path: str | Path, *, verify: bool = True) -> ObservationStore:
    """The observation store at `path`. DataNotFoundError when there is none (with the command
    that builds one); IntegrityError when its columns or patches no longer match their digests."""
    root = Path(path)
    manifest = read_manifest(root, FORMAT, HINT, verify=verify, version=FORMAT_VERSION)
    data = {c["name"]: read_array(root, c["name"]) for c in manifest["columns"]}
    data["split"] = read_array(root, "split")
    df = pd.DataFrame({k: (np.asarray(v).tolist() if v.dtype.kind in "OUT" else v) for k, v in data.items()})
    if len(df) != manifest["n_patches"]:
        raise IntegrityError(f"observation store has {len(df)} rows, the manifest records {manifest['n_patches']}", path=str(root))
    store = ObservationStore(root, manifest, df)
    if verify:
        cube = store.cube()
        if cube.manifest.get("content_digest") != manifest["patches"]["content_digest"] or cube.n_samples != len(df):
            raise IntegrityError("the patches cube is not the one this observation store was written with", path=str(root))
    return store


def _raw(store: ObservationStore) -> np.ndarray:
    """Every patch, unnormalized, [N, 6, H, W] (one core call)."""
    from ..reader import CubeReader

    return CubeReader(store.patches_path, normalize="none").read(np.arange(len(store))).cubes[:, :, 0]


class ObservationKind:
    """The observation store as a store kind (`astrobio.stores.kinds`)."""

    name = "observation"
    formats = (FORMAT,)

    def open(self, location: Path | str, *, verify: bool = True) -> ObservationStore:
        return open_observations(location, verify=verify)

    def verify(self, location: Path | str) -> tuple[bool, str]:
        """Columns and manifest digests, then every patch chunk through the Rust core."""
        from .cube_kind import KIND as CUBE

        store = open_observations(location, verify=True)
        ok, summary = CUBE.verify(store.patches_path)
        if not ok:
            return False, f"patches: {summary}"
        return True, f"{len(store)} patches ({summary})"

    def check(self, location: Path | str) -> dict[str, Any]:
        ok, summary = self.verify(location)
        if not ok:
            raise IntegrityError(summary, path=str(location))
        return {"patches": summary}

    def digest(self, manifest: Mapping[str, Any]) -> str:
        return digest(manifest)

    def describe(self, location: Path | str, manifest: Mapping[str, Any]) -> Description:
        counts = manifest["counts"]
        cube = read_group_manifest(Path(location) / "patches")
        runs = {s: len(cube["split"].get(s, [])) for s in SPLITS}
        splits = {s: {"runs": runs[s], "samples": int(c["positive"] + c["negative"])} for s, c in counts.items()}
        summary = {"format": manifest["format"], "format_version": manifest["format_version"], "n_patches": manifest["n_patches"],
                   "patch_size": manifest["patch_size"], "channels": manifest["channels"], "masks": manifest["masks"],
                   "counts": counts, "split_rule": manifest["split_rule"], "request": manifest.get("request")}
        return Description(splits, summary)

    def _values(self, location: Path | str) -> dict[str, np.ndarray]:
        raw = _raw(open_observations(location, verify=False))
        return {c: raw[:, i][raw[:, len(CHANNELS) + i] > 0] for i, c in enumerate(CHANNELS)}

    def statistics(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, float]]:
        return {k: moments(v) for k, v in self._values(location).items()}

    def histograms(self, location: Path | str, manifest: Mapping[str, Any]) -> dict[str, dict[str, list[float]]]:
        return {k: histogram(np.arcsinh(v)) for k, v in self._values(location).items()}

    def expectations(self, location: Path | str, manifest: Mapping[str, Any], scan: Mapping[str, Any]) -> list[dict[str, Any]]:
        from ._obs_quality import observation_expectations

        store = open_observations(location, verify=False)
        return observation_expectations(store.columns, _raw(store), manifest)


KIND = ObservationKind()
