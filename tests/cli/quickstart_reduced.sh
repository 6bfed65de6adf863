#!/usr/bin/env bash
# rlvr quickstart with fewer steps: SFT -> eval -> GRPO -> eval must complete and write summary.json (with
# the three accuracies) and the PNG plot.
set -euo pipefail
rlvr=$1 out=$2
rm -rf "$out"
"$rlvr" quickstart --out "$out" --sft train.steps=40 --sft data.task_eval_size=40 \
  --grpo train.steps=3 --grpo train.eval_every=3 --grpo data.task_eval_size=40 --grpo train.prompts_per_step=4
for k in accuracy_before_sft accuracy_after_sft accuracy_after_grpo; do
  grep -q "\"$k\"" "$out/summary.json" || { echo "summary.json lacks $k"; exit 1; }
done
head -c 8 "$out/grpo_curve.png" | od -c | grep -q 'P   N   G' || { echo "grpo_curve.png is not a PNG"; exit 1; }
test -f "$out/grpo/checkpoints/step_3/model.safetensors"
echo "quickstart_reduced: ok"
