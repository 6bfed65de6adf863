#!/usr/bin/env bash
# Side-by-side model benchmark: rlvr CausalLM vs transformers on the same random ~30M Qwen2 checkpoint, the same
# inputs (B x T tokens, one row a quarter padded) and the same CPU threads; forward (no grad) and forward+backward.
# Usage: bench/model/run.sh [BUILD_DIR] (env: BATCH=4 SEQ=256 THREADS=2 REPS=3 VENV=...)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
VENV=${VENV:-/root/.cache/rlvr/venv-torch2.11.0}
BATCH=${BATCH:-4}; SEQ=${SEQ:-256}; THREADS=${THREADS:-2}; REPS=${REPS:-3}
DATA=$BUILD/bench/model/data
cmake --build "$BUILD" -j1 --target bench_model >/dev/null
"$VENV/bin/python" "$ROOT/bench/model/make_bench_model.py" --out "$DATA/hf"
echo "== $BATCH x $SEQ tokens (last row 1/4 padded), fp32, $THREADS threads, best of $REPS"
for MODE in forward train; do
  HF=$(OMP_NUM_THREADS=$THREADS "$VENV/bin/python" "$ROOT/bench/model/hf_forward.py" --model "$DATA/hf" \
    --batch "$BATCH" --seq "$SEQ" --threads "$THREADS" --reps "$REPS" --mode $MODE 2>/dev/null | tail -1)
  ME=$(OMP_NUM_THREADS=$THREADS "$BUILD/bench/model/bench_model" --model "$DATA/hf" \
    --batch "$BATCH" --seq "$SEQ" --threads "$THREADS" --reps "$REPS" --mode $MODE | tail -1)
  echo "transformers: $HF"
  echo "rlvr:         $ME"
  "$VENV/bin/python" - "$HF" "$ME" <<'PY'
import json, sys
hf, me = (json.loads(s) for s in sys.argv[1:3])
print(f"{me['mode']}: rlvr / transformers = {me['tokens_per_s'] / hf['tokens_per_s']:.2f}x "
      f"({me['tokens_per_s']:.0f} vs {hf['tokens_per_s']:.0f} tokens/s)")
PY
done
