#!/usr/bin/env bash
# The CUDA checks, in one short run on a GPU machine; figures land in $OUT (docs/performance.md).
#
#   OUT=results bash scripts/gpu_check.sh
#   DRY_RUN=1 bash scripts/gpu_check.sh     # on a CPU: the benchmark's dry run, the other steps listed
#
# Runs from the repository root against python/ (the extension built there by
# `maturin develop --release`), or an installed astrobio. Wheels in .whl/ (packages the GPU
# machine lacks) are installed into /tmp/site first; a data home in .gpuhome/ (parts built
# elsewhere, e.g. the metabolic store whose build needs cobra) is copied into $ASTROBIO_HOME;
# the language model's encoder in .encoder/ (float16, from
# `python -m astrobio.models.encoder_weights .encoder --part-mb 24`) is used through
# ASTROBIO_TEXT_ENCODER.
# Prepared for the 2026-11-30 run (a GPU image with torch but without zarr):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl zarr numcodecs donfig google-crc32c crc32c
#   astrobio datasets build default --parts catalogues,metabolic,reanalysis --root .gpuhome
# What travels is at most 64 MiB a call, the repository's tracked files (26 MB) included: with
# the extension (11 MB, 9.6 MB stripped) and the wheels, the encoder's two parts (24 + 22 MB) do
# not fit in one call. A first call carries .whl and .encoder/model-00001-of-00002.safetensors and
# runs `true`; the warm machine keeps them (ignored files stay between calls), and the second call
# carries the extension, .gpuhome and the rest of .encoder/ (its second part and small files) and runs this script.
# Each step is timed and its log kept; a failing step does not stop the others. $OUT gets:
# summary.txt (one line per step), performance-gpu.json (benches/gpu_step.py: copy it to
# docs/) and gpu_check.tgz (every log and run summary). Step limits add up to about 9 minutes;
# the 2026-11-30 run took under 4 with the steps of that time.
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
[ -f .encoder/config.json ] && export ASTROBIO_TEXT_ENCODER=$PWD/.encoder
RUNS=$W/runs
graphs=()
[ -d "$ASTROBIO_HOME/default/metabolic.zarr" ] && graphs=(--set "data.graphs=$ASTROBIO_HOME/default/metabolic.zarr")
if [ -n "${DRY_RUN:-}" ]; then  # CPU: the benchmark's own dry run (loader rows); the GPU steps listed only
  $PY benches/gpu_step.py --dry-run --models "" --json "$OUT/gpu_step-dry-run.json" || exit 1
  echo "GPU steps (not run): gpu_step, train_default, pytest_cuda, train_{multimodal,graph,language}"
  exit 0
fi

step() {  # step NAME TIMEOUT_S CMD...: run, time, log to $W/NAME.log, one line in $OUT/summary.txt
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$W/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
}

nvidia-smi >"$W/nvidia-smi.txt" 2>&1
step env 60 $PY -c "import astrobio, torch; print('astrobio', astrobio.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(0), 'bf16', torch.cuda.is_bf16_supported())"
# the loader's share of a CUDA step (pinned buffers, read-ahead depths, workers, bf16 batches), then
# every model at its default batch and at one that fills the GPU: samples/s, loader share, NVML
# utilization, energy per epoch
bench_graphs=()
[ -d "$ASTROBIO_HOME/default/metabolic.zarr" ] && bench_graphs=(--graphs "$ASTROBIO_HOME/default/metabolic.zarr")
step gpu_step 240 $PY benches/gpu_step.py --steps 200 --model-steps 40 "${bench_graphs[@]}" --json "$OUT/performance-gpu.json"
# the default job as a user runs it, on the GPU (bf16-mixed, pinned memory)
step train_default 150 $PY -m astrobio.train --output-dir "$RUNS/default" --set trainer.progress_bar=false
# the tests that take a CUDA branch when one is present (pinned memory, precision, NVML accounting)
step pytest_cuda 120 $PY -m pytest -q -p no:cacheprovider tests/test_readahead.py tests/test_reader.py \
  tests/test_dataloader.py tests/test_dataloader_shm.py tests/train/test_config.py tests/test_resources.py
# every other model, one epoch each, on the GPU (graph and language on a metabolic store built
# elsewhere when one came in .gpuhome: the default build reads cobra's bundled models; language
# through the float16 encoder in .encoder). MODELS picks them.
for model in ${MODELS:-multimodal graph language}; do
  extra=()
  [ "$model" != multimodal ] && extra=("${graphs[@]}")
  step "train_$model" 90 $PY -m astrobio.train --model "$model" --max-epochs 1 --output-dir "$RUNS/$model" \
    --set trainer.progress_bar=false "${extra[@]}"
done
tar -C "$W" -czf "$OUT/gpu_check.tgz" --exclude=checkpoints --exclude=tensorboard . 2>/dev/null
cat "$OUT/summary.txt"
