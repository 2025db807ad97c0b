"""Bar chart of a benches/loader.py result (GB/s of normalized float32 output per contender)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot(doc: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = doc["results"]
    names = list(res)
    vals = [res[k]["gb_per_s"] for k in names]
    colors = ["tab:blue" if k.startswith("astrobio") else "tab:gray" if k.startswith(("decode", "memcpy")) else "tab:orange"
              for k in names]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(names) + 1.2))
    ax.barh(names[::-1], vals[::-1], color=colors[::-1])
    for y, v in enumerate(vals[::-1]):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    m = doc["meta"]
    ax.set_xlabel("GB/s of normalized float32 batches (median of interleaved rounds)")
    ax.set_title(f"Loader throughput, {m['samples']} samples of {'x'.join(map(str, m['shape']))}, "
                 f"batch {m['batch']}, {m['cpus']} CPUs", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


if __name__ == "__main__":
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
