#!/usr/bin/env bash
# Data-parallel training with torchrun: one process per device, each reading its own shard of
# every epoch (astrobio's sampler shards by rank), gradients averaged by DDP, metrics reduced
# exactly, one checkpoint written by rank 0. On CPUs the backend is gloo; on GPUs NCCL.
#
#   bash examples/ddp_torchrun.sh [OUT_DIR] [PROCESSES] [EPOCHS]
#
# Several machines: run the same command on each with --nnodes N --node_rank I
# --rdzv_endpoint HOST:PORT instead of --standalone, and --num-nodes N for astrobio.
set -euo pipefail
out="${1:-runs/ddp-example}"
procs="${2:-2}"
epochs="${3:-2}"
torchrun --standalone --nproc_per_node "$procs" -m astrobio.train \
  --devices "$procs" --max-epochs "$epochs" --output-dir "$out" \
  --set trainer.progress_bar=false --set trainer.logger=csv
# Continue exactly where it stopped (same number of processes):
#   torchrun --standalone --nproc_per_node "$procs" -m astrobio.train --devices "$procs" --resume "$out" --max-epochs 4
echo "run folder: $out (summary.txt, checkpoints/, csv/)"
