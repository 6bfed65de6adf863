#!/usr/bin/env bash
# The device check, for a session that is lent a GPU (one H200, same torch, no network). Run from the repo
# root on the device machine with the build directory carried (LIBTORCH.md 5a). Writes results under $OUT.
#   1. rlvr --version (CUDA usable, device count)
#   2. the GPU-labelled tests (ctest -L gpu)
#   3. a 1-rank NCCL run and a short GPU training run (builtin model, bf16 autocast)
#   4. the rollout and model benchmarks on the GPU
# Not run yet: no GPU has been lent to this project so far.
set -uo pipefail
OUT=${OUT:-/tmp/rlvr-gpu}; mkdir -p "$OUT"
B=${RLVR_BUILD:-build}
TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB:${RLVR_DEPS_LIB:-$PWD/.deps/lib}:${LD_LIBRARY_PATH:-}"
{
  echo "== version"; "$B/cli/rlvr" --version
  echo "== gpu tests"; ctest --test-dir "$B" -L gpu --output-on-failure
  echo "== 1-rank NCCL + short GPU GRPO run"
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 \
    "$B/cli/rlvr" train -c configs/quickstart_grpo.yaml model.path=builtin:small run.device=cuda \
      distributed.backend=nccl train.steps=5 run.output_dir="$OUT/gpu_run"
  echo "== benches"
  [ -x bench/rollout/run.sh ] && DEVICE=cuda bench/rollout/run.sh "$B"
} 2>&1 | tee "$OUT/gpu_check.log"
