"""Register a store as a versioned dataset, check its quality, and read it back by name@vN.

    python examples/registry_dataset.py [STORE]

Uses the registry of $ASTROBIO_HOME (SQLite, no set-up; PostgreSQL when ASTROBIO_REGISTRY_URL is
set). Without STORE it registers the default dataset's NCEP wind store (built on first use).
The same operations are served over HTTP by `astrobio serve` (see docs/registry.md), and
`python -m astrobio.train --data NAME@vN` trains on a registered version and records it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import astrobio
from astrobio.datasets import build_default
from astrobio.registry import open_registry, resolve_data_ref


def main(argv: list[str]) -> None:
    store = Path(argv[0]) if argv else build_default(["reanalysis"], progress=False)["reanalysis"][0]
    registry = open_registry()

    # A version is `ready` only after the full chunk scan and the digest check passed.
    version = registry.register(store, "example-winds", description="NCEP 200 hPa winds", if_changed=True)
    ref = version["ref"]
    print(f"{ref}: {version['status']}, digest {version['digest'][:19]}..., splits {version['splits']}")

    # The quality report: expectations (checksums, ranges, leakage, duplicates, drift vs the last version).
    report = registry.quality(ref)
    stats = report["statistics"]
    print(f"quality: success={report['success']} ({stats['successful_expectations']}/{stats['evaluated_expectations']})")
    for r in report["results"]:
        print(f"  {'ok  ' if r['success'] else 'FAIL'} {r['expectation']}: {r['observed_value']}")

    # Load by reference: the registry checks the store is still the registered one.
    uri, digest, kind = resolve_data_ref(ref)
    opened = astrobio.open_store(uri)
    batch = astrobio.CubeReader(uri).read(opened.samples("train")[:4])
    print(f"loaded {kind} store {uri}: batch {batch.cubes.shape}")


if __name__ == "__main__":
    main(sys.argv[1:])
