#!/usr/bin/env bash
# The GPU check: runs on a bare GPU machine (python3 with the torch wheel, no compiler, no network) from a bundle
# made by scripts/gpu_bundle.sh, in about 7 minutes at most, and writes everything under OUT (docs/gpu.md):
#   OUT/gpu_check.log   every part's output, in order
#   OUT/summary.txt     one line per part: ok | FAILED (rc) | TIMEOUT | SKIPPED (why), with its seconds
#   OUT/grpo_metrics.jsonl   the metrics of the short GRPO run on CUDA (when it ran)
# Usage: bash scripts/gpu_check.sh BUNDLE OUT
# Each part has its own timeout (and the whole check a budget, RLVR_GPU_CHECK_BUDGET_S, default 420 s), so one
# hang cannot eat the call. Without CUDA (the CPU rehearsal) the CUDA parts are skipped with the reason, and a
# CPU smoke run plus the benchmarks on tiny shapes run instead.
# Environment: RLVR_PYTHON (default python3) is the Python whose torch wheel provides LibTorch and NVIDIA's libraries.
set -uo pipefail
if [ $# -ne 2 ]; then echo "usage: bash scripts/gpu_check.sh BUNDLE OUT" >&2; exit 2; fi
[ -x "$1/rlvr" ] || { echo "gpu_check.sh: $1/rlvr not found: BUNDLE must be a folder made by scripts/gpu_bundle.sh" >&2; exit 2; }
BUNDLE=$(cd "$1" && pwd)
OUT=$2
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
LOG="$OUT/gpu_check.log" SUMMARY="$OUT/summary.txt"
: > "$LOG"; : > "$SUMMARY"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rlvr-gpu-check.XXXXXX")   # run directories stay out of OUT (8 files come back)
BUDGET=${RLVR_GPU_CHECK_BUDGET_S:-420}
T0=$(date +%s)
failures=0

say() { echo "$*" | tee -a "$LOG"; }
# part NAME TIMEOUT_S CMD...: runs CMD under its timeout (cut to what is left of the budget), logs and summarises.
part() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET - ($(date +%s) - T0) ))
  if (( left < 10 )); then
    say "== $name: SKIPPED (the check's ${BUDGET} s budget is spent)"
    echo "$name: SKIPPED (budget spent)" >> "$SUMMARY"; return
  fi
  (( limit > left )) && limit=$left
  say "== $name (timeout ${limit} s): $*"
  local t=$(date +%s) rc
  timeout -k 10 "$limit" "$@" >> "$LOG" 2>&1
  rc=$?
  local secs=$(( $(date +%s) - t )) status
  case $rc in
    0) status=ok ;;
    124|137) status="TIMEOUT after ${limit} s"; failures=$((failures + 1)) ;;
    *) status="FAILED (exit $rc)"; failures=$((failures + 1)) ;;
  esac
  say "== $name: $status in ${secs} s"
  echo "$name: $status in ${secs} s" >> "$SUMMARY"
}
skip() { say "== $1: SKIPPED ($2)"; echo "$1: SKIPPED ($2)" >> "$SUMMARY"; }

# --- libraries: the wheel's torch/lib and nvidia/*/lib, found through its Python; the bundle's own via RUNPATH.
PY=${RLVR_PYTHON:-python3}
TORCH_DIR=$("$PY" -c 'import torch,os;print(os.path.dirname(torch.__file__))' 2>>"$LOG") || {
  say "gpu_check.sh: '$PY' cannot import torch: the bundle needs the torch wheel's libraries"; exit 1; }
SITE=$(dirname "$TORCH_DIR")
libpath="$TORCH_DIR/lib"
for d in "$SITE"/nvidia/*/lib; do [ -d "$d" ] && libpath="$libpath:$d"; done
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "gpu_check: bundle $BUNDLE, torch $("$PY" -c 'import torch;print(torch.__version__)' 2>/dev/null) at $TORCH_DIR, out $OUT"
[ -f "$BUNDLE/MANIFEST" ] && head -2 "$BUNDLE/MANIFEST" | sed 's/^/gpu_check: /' | tee -a "$LOG"
# This machine's libstdc++ first (it may be newer than the one the bundle was built with); the bundle's only if
# the binary cannot start without it.
if ! "$BUNDLE/rlvr" --version > "$WORK/version" 2>&1; then
  if grep -q -E 'GLIBCXX|CXXABI|GCC_[0-9]|libstdc|libgcc_s' "$WORK/version"; then
    export LD_LIBRARY_PATH="$BUNDLE/lib/fallback:$LD_LIBRARY_PATH"
    say "gpu_check: this machine's libstdc++ is too old for the bundle; using the bundle's (lib/fallback)"
  fi
fi

part version 30 "$BUNDLE/rlvr" --version
if grep -q 'cuda: available' "$LOG"; then CUDA=1; else CUDA=0; fi
NO_CUDA="CUDA not available: $(grep -m1 '^cuda:' "$LOG" || echo 'rlvr did not start')"
[ "$CUDA" = 1 ] && command -v nvidia-smi >/dev/null && part nvidia-smi 20 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv

# Short GRPO runs: builtin:tiny (259-token vocabulary), arithmetic, 3 steps of 4 prompts x 4 completions.
grpo_args=(model.path=builtin:tiny data.train=builtin:arithmetic data.task_eval_size=16 train.prompts_per_step=4
           rollout.group_size=4 rollout.max_new_tokens=16 train.micro_batch_size=16 train.eval_every=0
           train.save_every=0 train.keep_last=1 logging.console_every=1 logging.progress=false)

if [ "$CUDA" = 1 ]; then
  # [gpu] tests: forward CUDA == CPU, bf16 optimizer step, KV decode == full forward, sampler vs trainer log-probs,
  # 1-rank NCCL communicator. Their "gpu-check:" lines hold the measured differences.
  part tests 120 "$BUNDLE/test_gpu" --durations yes
  # GRPO end to end on CUDA, through a real 1-rank NCCL group (not the local shortcut): the log's "dist:" line
  # names the backend.
  part grpo-cuda 75 env RLVR_DIST_FORCE_BACKEND=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29533 \
    "$BUNDLE/rlvr" train "${grpo_args[@]}" run.device=cuda distributed.backend=nccl train.steps=3 \
    run.output_dir="$WORK/grpo_cuda"
  for f in "$WORK"/grpo_cuda/metrics.jsonl "$WORK"/grpo_cuda/*/metrics.jsonl; do
    [ -f "$f" ] && cp "$f" "$OUT/grpo_metrics.jsonl" && break
  done
  # Random model with Qwen2.5-1.5B's shapes, bf16.
  part attention 60 "$BUNDLE/bench_gpu" attention --device cuda
  part ckpt 90 "$BUNDLE/bench_gpu" ckpt --device cuda
  part decode 120 "$BUNDLE/bench_gpu" decode --device cuda
else
  for p in tests grpo-cuda attention ckpt decode; do skip "$p" "$NO_CUDA"; done
  timeout -k 5 60 "$BUNDLE/test_gpu" >> "$LOG" 2>&1   # prints its own skip line (exit 0)
  # What runs without a GPU: a 2-step CPU smoke run from the bundle, and the benchmark code on tiny shapes.
  part cpu-smoke 240 env OMP_NUM_THREADS=1 "$BUNDLE/rlvr" train "${grpo_args[@]}" run.device=cpu run.threads=1 \
    train.steps=2 run.output_dir="$WORK/grpo_cpu"
  part bench-cpu-tiny 120 bash -c "for p in attention ckpt decode; do '$BUNDLE/bench_gpu' \$p --device cpu --shapes tiny || exit 1; done"
fi

rm -rf "$WORK"
say "gpu_check: $failures part(s) failed, $(( $(date +%s) - T0 )) s in all; summary:"
tee -a "$LOG" < "$SUMMARY"
[ "$failures" -eq 0 ]
