#!/usr/bin/env bash
# The CUDA checks, in one short run on a GPU machine; figures land in $OUT (docs/performance.md).
#
#   OUT=results bash scripts/gpu_check.sh
#
# Runs from the repository root against python/ (the extension built there by
# `maturin develop --release`), or an installed astrobio. Wheels in .whl/ (packages the GPU
# machine lacks) are installed into /tmp/site first; a data home in .gpuhome/ (parts built
# elsewhere, e.g. the metabolic store whose build needs cobra) is copied into $ASTROBIO_HOME.
# Prepared for the 2026-11-30 run (a GPU image with torch but without zarr):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl zarr numcodecs donfig google-crc32c crc32c
#   astrobio datasets build default --parts catalogues,metabolic,reanalysis --root .gpuhome
# Each step is timed and its log kept; a failing step does not stop the others. $OUT gets three
# files: summary.txt (one line per step), gpu_step.json and gpu_check.tgz (every log and run summary).
set -u
OUT=${OUT:-$(mktemp -d)}
W=$(mktemp -d)
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/python:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export ASTROBIO_HOME=${ASTROBIO_HOME:-/tmp/astrobio-home}
mkdir -p "$ASTROBIO_HOME"
[ -d .gpuhome ] && cp -r .gpuhome/. "$ASTROBIO_HOME"/
RUNS=$W/runs

step() {  # step NAME TIMEOUT_S CMD...: run, time, log to $W/NAME.log, one line in $OUT/summary.txt
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$W/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
}

nvidia-smi >"$W/nvidia-smi.txt" 2>&1
step env 60 $PY -c "import astrobio, torch; print('astrobio', astrobio.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(0), 'bf16', torch.cuda.is_bf16_supported())"
# the loader's share of a CUDA step: pinned buffers, non-blocking copies, bf16 autocast
step gpu_step 150 $PY benches/gpu_step.py --steps 300 --json "$OUT/gpu_step.json"
# the default job as a user runs it, on the GPU (bf16-mixed, pinned memory)
step train_default 150 $PY -m astrobio.train --output-dir "$RUNS/default" --set trainer.progress_bar=false
# the tests that take a CUDA branch when one is present (pinned memory, precision, NVML accounting)
step pytest_cuda 120 $PY -m pytest -q -p no:cacheprovider tests/test_readahead.py tests/test_reader.py \
  tests/test_dataloader_shm.py tests/train/test_config.py tests/test_resources.py
# every other model, one epoch each, on the GPU (graph and language on a metabolic store built
# elsewhere when one came in .gpuhome: the default build reads cobra's bundled models). MODELS
# picks them.
graphs=()
[ -d "$ASTROBIO_HOME/default/metabolic.zarr" ] && graphs=(--set "data.graphs=$ASTROBIO_HOME/default/metabolic.zarr")
for model in ${MODELS:-multimodal graph language}; do  # language needs its 88 MB encoder in the sources cache
  extra=()
  [ "$model" != multimodal ] && extra=("${graphs[@]}")
  step "train_$model" 90 $PY -m astrobio.train --model "$model" --max-epochs 1 --output-dir "$RUNS/$model" \
    --set trainer.progress_bar=false "${extra[@]}"
done
tar -C "$W" -czf "$OUT/gpu_check.tgz" --exclude=checkpoints --exclude=tensorboard . 2>/dev/null
cat "$OUT/summary.txt"
