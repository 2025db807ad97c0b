#!/usr/bin/env bash
# Two-node data-parallel training on ONE cube store in object storage (s3://): one torchrun
# launcher per node, one process per node here (gloo on CPU; NCCL on GPUs), each rank reading
# its own shard of every epoch straight from the bucket (astrobio's sampler shards by rank, the
# Rust core fetches a batch's chunk objects concurrently), gradients averaged by DDP, one set of
# checkpoints written by rank 0. Nothing is copied to the nodes first.
#
#   bash examples/two_node_s3.sh s3://BUCKET/climate.zarr [OUT_DIR] [EPOCHS]
#
# The store URL must hold an astrobio cube store (`astrobio ingest climate --out s3://...`, or
# `astrobio.write_store("s3://...", ...)`). Object storage is configured by the standard AWS
# variables, which every rank inherits from this shell (never put credentials in the URL):
#
#   export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_REGION=eu-west-1
#   export AWS_ENDPOINT_URL=https://s3.example.org      # S3-compatible servers (MinIO, Ceph, ...)
#
# Without NODE_RANK both nodes are started on this machine over loopback (127.0.0.1): a dry run
# of the real launch. On two machines, run on each (same OUT_DIR on a shared filesystem, so a
# resume finds rank 0's checkpoints):
#
#   NODE_RANK=0 MASTER_ADDR=<host of node 0> bash examples/two_node_s3.sh s3://... /shared/run   # on node 0
#   NODE_RANK=1 MASTER_ADDR=<host of node 0> bash examples/two_node_s3.sh s3://... /shared/run   # on node 1
#
# Continue exactly where it stopped (both nodes again, same arguments): RESUME=1.
set -euo pipefail
store="${1:?usage: bash examples/two_node_s3.sh s3://BUCKET/PREFIX/store.zarr [OUT_DIR] [EPOCHS]}"
out="${2:-runs/two-node-s3}"
epochs="${3:-2}"
master="${MASTER_ADDR:-127.0.0.1}"
port="${MASTER_PORT:-29531}"

node() {  # node RANK: one torchrun launcher for that node, static rendezvous at $master:$port
  local resume=()
  if [[ "${RESUME:-0}" == 1 ]]; then resume=(--resume "$out"); fi
  OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" torchrun --nnodes 2 --nproc_per_node 1 --node_rank "$1" \
    --master_addr "$master" --master_port "$port" \
    -m astrobio.train --num-nodes 2 --devices 1 --store "$store" --output-dir "$out" \
    --max-epochs "$epochs" --batch-size 8 \
    --set model.options.channels="[8, 8]" --set model.options.hidden=16 \
    --set trainer.checkpoint_every_n_epochs=1 --set trainer.progress_bar=false --set trainer.logger=csv "${resume[@]}"
}

if [[ -n "${NODE_RANK:-}" ]]; then
  node "$NODE_RANK"
else
  node 1 > "${TMPDIR:-/tmp}/two_node_s3.node1.log" 2>&1 &   # node 1 in the background, node 0 here
  node1=$!
  node 0
  wait "$node1" || { echo "node 1 failed: see ${TMPDIR:-/tmp}/two_node_s3.node1.log" >&2; exit 1; }
fi
echo "run folder: $out (summary.txt, checkpoints/ from rank 0, csv/)"
