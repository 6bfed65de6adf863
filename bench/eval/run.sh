#!/usr/bin/env bash
# Multi-path evaluation on a trained model: accuracy, tokens generated, tokens per correct answer and wall time
# for maj@k and every confidence method, side by side over the SAME k samples (offline methods share one
# generation; the online methods generate their own stopped paths after the shared warm-up).
#   [EVAL_ARGS="--max-new-tokens 32 --conf-window 4"] bench/eval/run.sh RLVR_BINARY MODEL_DIR [k] [limit] [threads]
# MODEL_DIR: e.g. the quickstart's GRPO checkpoint (runs/quickstart/grpo/checkpoints/step_60). Prints a markdown
# table and writes bench-eval.json in the current directory.
set -euo pipefail
rlvr=$1 model=$2 k=${3:-32} limit=${4:-100} threads=${5:-1}
methods=maj,conf-mean,conf-lowest@10,conf-lowest@90,conf-tail@10,conf-bottom10@10,short-3,online-low,online-high
"$rlvr" eval --model "$model" --data builtin:arithmetic -k "$k" --temperature 1.0 --limit "$limit" \
  --aggregate "$methods" --out bench-eval.json ${EVAL_ARGS:-} run.threads="$threads" data.task_eval_size=200 >/dev/null
python3 - "$k" "$methods" <<'PY'
import json, sys
k, methods = sys.argv[1], sys.argv[2].split(",")
r = json.load(open("bench-eval.json"))
print(f"model {r['model']}, {int(r['problems'])} problems, k = {k}, T = {r['sampling']['temperature']}, "
      f"window {r['aggregation']['window']}, warm-up {r['aggregation']['warmup']}")
print(f"mean@{k} {r['mean@' + k]:.3f}  pass@{k} {r['pass@' + k]:.3f}  "
      f"confidence correct {r.get('confidence/correct', float('nan')):.3f} wrong {r.get('confidence/wrong', float('nan')):.3f}")
base = r["agg/maj/tokens"]
print("| method | accuracy | tokens | tokens vs maj | tokens / correct | wall s | stopped |")
print("|---|---|---|---|---|---|---|")
for m in methods:
    a = lambda key: r.get(f"agg/{m}/{key}", float("nan"))
    print(f"| {m} | {a('accuracy'):.3f} | {int(a('tokens'))} | {a('tokens') / base:.2f} | {a('tokens_per_correct'):.0f} | "
          f"{a('wall_s'):.1f} | {a('stopped_frac') if m.startswith('online') else float('nan'):.2f} |")
PY
