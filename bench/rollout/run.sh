#!/usr/bin/env bash
# Side-by-side rollout benchmark: rlvr's RolloutEngine vs transformers generate() on the same random ~39M Qwen2
# checkpoint, the same prompts (token ids), G samples, exactly N new tokens, pure sampling, the same CPU threads.
# Usage: bench/rollout/run.sh [BUILD_DIR] (env: PROMPTS=8 SAMPLES=8 NEW=128 THREADS=1 REPS=2 VENV=...)
# Also reports tokens per process-CPU-second: on a shared machine that is the fairer single-thread comparison.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
VENV=${VENV:-/root/.cache/rlvr/venv-torch2.11.0}
PROMPTS=${PROMPTS:-8}; SAMPLES=${SAMPLES:-8}; NEW=${NEW:-128}; THREADS=${THREADS:-1}; REPS=${REPS:-2}
DATA=$BUILD/bench/rollout/data
cmake --build "$BUILD" -j1 --target bench_rollout >/dev/null
"$VENV/bin/python" "$ROOT/bench/rollout/make_checkpoint.py" --out "$DATA" --prompts "$PROMPTS"
echo "== $PROMPTS prompts (24..120 tokens) x G=$SAMPLES, $NEW new tokens each, $THREADS threads, best of $REPS"
echo "-- transformers:"
OMP_NUM_THREADS=$THREADS "$VENV/bin/python" "$ROOT/bench/rollout/hf_generate.py" --model "$DATA/hf" \
  --prompts "$DATA/prompts_$PROMPTS.json" --samples "$SAMPLES" --new "$NEW" --threads "$THREADS" --reps "$REPS" \
  | tee "$DATA/hf.json"
echo "-- rlvr:"
OMP_NUM_THREADS=$THREADS "$BUILD/bench/rollout/bench_rollout" --model "$DATA/hf" --prompts "$DATA/prompts_$PROMPTS.json" \
  --samples "$SAMPLES" --new "$NEW" --threads "$THREADS" --reps "$REPS" | tee "$DATA/rlvr.json"
"$VENV/bin/python" - "$DATA/hf.json" "$DATA/rlvr.json" <<'PY'
import json, sys
hf, me = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
print(f"speedup rlvr / transformers: {me['tokens_per_s'] / hf['tokens_per_s']:.2f}x wall "
      f"({me['tokens_per_s']:.0f} vs {hf['tokens_per_s']:.0f} new tokens/s), "
      f"{me['tokens_per_cpu_s'] / hf['tokens_per_cpu_s']:.2f}x per CPU second "
      f"({me['tokens_per_cpu_s']:.0f} vs {hf['tokens_per_cpu_s']:.0f}); "
      f"rlvr at {100 * me['fraction_of_bandwidth_bound']:.0f}% of the memory-bandwidth bound, "
      f"{100 * me['fraction_of_flop_bound']:.0f}% of the GEMM-rate bound "
      f"(per CPU second: {100 * me['fraction_of_bandwidth_bound_cpu']:.0f}%, {100 * me['fraction_of_flop_bound_cpu']:.0f}%)")
PY
