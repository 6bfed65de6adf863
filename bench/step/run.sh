#!/usr/bin/env bash
# One whole GRPO step, rlvr vs TRL's GRPOTrainer (from PyPI), side by side on the quickstart workload: the same
# SFT checkpoint, the same 2000 arithmetic prompts (difficulty 1, `rlvr data generate`), 64 prompts x 8
# completions per step, 32 new tokens, temperature 1, the same loss, clipping, lr and CPU threads
# (bench/step/grpo.yaml; trl_grpo_step.py says how TRL is set). Each side runs STEPS steps in its own process,
# alternating, REPEATS times (rlvr twice: train.share_prompt false and true); the first step of each run is reported apart (warm-up) and the rest are averaged.
#   bench/step/run.sh RLVR_BINARY SFT_CHECKPOINT OUT [steps=6] [repeats=2] [threads=2]
# SFT_CHECKPOINT: e.g. runs/quickstart/sft/checkpoints/step_900. Writes OUT/*.jsonl and prints a table.
set -euo pipefail
rlvr=$1 sft=$2 out=$3 steps=${4:-6} repeats=${5:-2} threads=${6:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${VENV:-$HOME/.cache/rlvr/venv-torch2.11.0}
mkdir -p "$out"
if [[ ! -s "$out/train.jsonl" ]]; then
  "$rlvr" data generate -t arithmetic --difficulty 1 -n 2000 --seed 1 --split train > "$out/train.tmp"
  mv "$out/train.tmp" "$out/train.jsonl"
fi
for r in $(seq 1 "$repeats"); do
  for arm in rlvr rlvr_shared; do  # rlvr_shared: train.share_prompt=true (each prompt once per micro-batch)
    dir="$out/${arm}_$r"
    rm -rf "$dir"
    share=false
    [[ $arm == rlvr_shared ]] && share=true
    "$rlvr" train -c "$here/grpo.yaml" model.path="$sft" data.train="$out/train.jsonl" run.seed="$r" \
      run.output_dir="$dir" run.threads="$threads" train.steps="$steps" train.share_prompt=$share \
      > "$out/${arm}_$r.log" 2>&1 || { tail -30 "$out/${arm}_$r.log"; exit 1; }
    "$VENV/bin/python" - "$dir/metrics.jsonl" "$arm" > "$out/${arm}_$r.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if "time/step" not in m:
        continue
    print(json.dumps({"impl": sys.argv[2], "step": m["step"], "step_s": m["time/step"], "generate_s": m["time/generate"],
                      "score_s": m["time/score"], "update_s": m["time/update"],
                      "rollout_s": m["time/generate"] + m["time/score"] + m.get("time/advantages", 0),
                      "tokens": m.get("tokens_generated", 0)}))
PY
  done
  OMP_NUM_THREADS=$threads "$VENV/bin/python" "$here/trl_grpo_step.py" --model "$sft" --prompts "$out/train.jsonl" \
    --out "$out/trl_$r" --steps "$steps" --threads "$threads" --seed "$r" 2> "$out/trl_$r.log" |
    grep '^{"impl": "trl"' > "$out/trl_$r.jsonl" || { tail -30 "$out/trl_$r.log"; exit 1; }
done
"$VENV/bin/python" "$here/summarize.py" "$out" "$repeats"
