#!/usr/bin/env bash
# Side-by-side: forward + backward of response log-probs, rlvr (response_logprobs: hidden states at response
# positions through the chunked lm_head_logprobs) vs TRL (HF model with logits_to_keep + selective_log_softmax),
# on the same random Qwen2.5-0.5B-shaped checkpoint, the same token ids, the same CPU threads, gradient
# checkpointing on both sides, fp32. Each configuration runs once, in its own process (peak RSS is per process).
# Usage: bench/logprobs/run.sh [BUILD_DIR] (env: DATA=/tmp/rlvr_bench_logprobs THREADS=2 BATCH=4 PROMPT=256
#        RESPONSES="768 1536 3072" TRL_RESPONSES=<RESPONSES> VENV=...); TRL runs only for the response lengths in
#        TRL_RESPONSES (its full logits and their gradient need ~2 x B x R x V x 4 bytes: 15 GB at R = 3072).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
VENV=${VENV:-/root/.cache/rlvr/venv-torch2.11.0}
DATA=${DATA:-/tmp/rlvr_bench_logprobs}
THREADS=${THREADS:-2}; BATCH=${BATCH:-4}; PROMPT=${PROMPT:-256}; RESPONSES=${RESPONSES:-"768 1536 3072"}
TRL_RESPONSES=${TRL_RESPONSES:-$RESPONSES}
cmake --build "$BUILD" -j1 --target bench_logprobs >/dev/null
# shellcheck disable=SC2086
"$VENV/bin/python" "$ROOT/bench/logprobs/make_model.py" --out "$DATA" --batch "$BATCH" --prompt "$PROMPT" \
  --responses $RESPONSES
echo "== $BATCH rows x ($PROMPT prompt + R response) tokens, fp32, $THREADS threads, gradient checkpointing"
for R in $RESPONSES; do
  IDS=$DATA/ids_${BATCH}x${PROMPT}+${R}.txt
  ME=$(OMP_NUM_THREADS=$THREADS "$BUILD/bench/logprobs/bench_logprobs" --model "$DATA/hf" --ids "$IDS" \
    --prompt "$PROMPT" --threads "$THREADS" | tail -1)
  echo "rlvr: $ME"
  if [[ " $TRL_RESPONSES " != *" $R "* ]]; then echo "trl:  not run for R=$R (TRL_RESPONSES)"; continue; fi
  TRL=$(OMP_NUM_THREADS=$THREADS "$VENV/bin/python" "$ROOT/bench/logprobs/trl_logprobs.py" --model "$DATA/hf" \
    --ids "$IDS" --prompt "$PROMPT" --threads "$THREADS" 2>/dev/null | tail -1)
  echo "trl:  $TRL"
  "$VENV/bin/python" - "$ME" "$TRL" <<'PY'
import json, sys
me, trl = (json.loads(s) for s in sys.argv[1:3])
def step(d): return d["peak_rss_mb"] - d["rss_loaded_mb"]
print(f"R={me['response']}: peak RSS {me['peak_rss_mb']:.0f} vs {trl['peak_rss_mb']:.0f} MB "
      f"({me['peak_rss_mb'] / trl['peak_rss_mb']:.2f}x); above the loaded model {step(me):.0f} vs {step(trl):.0f} MB "
      f"({step(me) / step(trl):.2f}x); forward {me['forward_s']:.1f} vs {trl['forward_s']:.1f} s, backward "
      f"{me['backward_s']:.1f} vs {trl['backward_s']:.1f} s, total {me['total_s'] / trl['total_s']:.2f}x; "
      f"mean log-prob {me['logp_sum'] / (me['rows'] * me['response']):.4f} vs "
      f"{trl['logp_sum'] / (trl['rows'] * trl['response']):.4f}")
PY
done
