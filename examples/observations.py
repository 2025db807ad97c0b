"""Survey observations end to end, on real ZTF data: collect patches around validated detections
(with negatives made automatically), open the store, read a normalized batch through the Rust
core, and draw a gallery of positives and negatives per survey product.

    python examples/observations.py OUT_DIR [--patch-size 32] [--gallery PATH]

The sources (fink-science and ztfimg source distributions) are fetched on first use, pinned and
hash-checked. docs/observations.md explains the labels, the split and the store.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from astrobio.ingest.observations import ObservationRequest, ingest_observations
from astrobio.reader import CubeReader
from astrobio.stores.observation import KIND, open_observations


def gallery(store_path: Path, out: Path, per_class: int = 5) -> Path:
    """Positives and negatives of each survey product (science channel; missing pixels white)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = open_observations(store_path, verify=False)
    cols = store.columns
    raw = CubeReader(store.patches_path, normalize="none")
    groups = [(f"{s} {p}", lab) for (s, p), _ in cols.groupby(["survey", "product"]) for lab in (1, 0)]
    fig, axes = plt.subplots(len(groups), per_class, figsize=(1.6 * per_class, 1.7 * len(groups)), squeeze=False)
    for row, (name, lab) in enumerate(groups):
        s, p = name.split(" ", 1)
        idx = np.flatnonzero(((cols["survey"] == s) & (cols["product"] == p) & (cols["label"] == lab)).to_numpy())[:per_class]
        for k, ax in enumerate(axes[row]):
            ax.set_xticks([]), ax.set_yticks([])
            if k >= len(idx):
                continue
            x = raw.read([idx[k]]).cubes[0, :, 0]
            channel = 2 if x[5].mean() > 0.5 else 0  # the difference image where there is one
            img = np.where(x[3 + channel] > 0, np.arcsinh(x[channel] - np.median(x[channel])), np.nan)
            ax.imshow(img, cmap="gray", origin="lower")
            ax.set_title(f"{cols['anomaly_type'].iloc[idx[k]][:12]}", fontsize=6)
        axes[row][0].set_ylabel(f"{name}\n{'positive' if lab else 'negative'}", fontsize=7)
    fig.suptitle("observation patches: difference (alerts) or science (image), asinh stretch; white = masked", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--gallery", type=Path, default=None)
    a = ap.parse_args()
    request = ObservationRequest(patch_size=a.patch_size, max_image_positives=200)
    path = Path(ingest_observations(a.out / "observations.zarr", request))
    store = open_observations(path)
    print(f"{len(store)} patches; per split: {store.manifest['counts']}")
    print(f"dropped with their reasons: {store.manifest['dropped']}")
    ok, summary = KIND.verify(path)
    print(f"verified: {ok} ({summary})")
    batch = CubeReader(store.patches_path).read(store.samples("train")[:32])  # one core call: verified, normalized
    print(f"a normalized train batch: {batch.cubes.shape} {batch.cubes.dtype}")
    print(f"gallery: {gallery(path, a.gallery or a.out / 'gallery.png')}")


if __name__ == "__main__":
    main()
