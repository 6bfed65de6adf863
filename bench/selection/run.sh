#!/usr/bin/env bash
# Prompt selection before generation vs dynamic sampling: generated tokens and wall time needed to reach a fixed
# held-out accuracy, and the final accuracy, for four arms x seeds, all from the same SFT checkpoint:
#   all    every prompt, every group trained on (no dynamic sampling)
#   ds     DAPO dynamic sampling alone (groups all correct / all wrong dropped after generation, refilled)
#   ds_szv dynamic sampling + data.selection=skip_zero_variance
#   ds_prb dynamic sampling + data.selection=pass_rate_band
# The task (bench/selection/grpo.yaml) is the quickstart's arithmetic on a 256-problem training set, so every
# prompt comes back once per 8 steps and its history can predict it; held-out accuracy is greedy on 500 problems.
#   bench/selection/run.sh RLVR_BINARY SFT_CHECKPOINT OUT [seeds="1 2 3"] [target=0.74] [threads=2]
# SFT_CHECKPOINT: e.g. the quickstart's runs/quickstart/sft/checkpoints/step_900. Prints a markdown table and writes
# OUT/summary.json.
set -euo pipefail
rlvr=$1 sft=$2 out=$3 seeds=${4:-"1 2 3"} target=${5:-0.74} threads=${6:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out"
declare -A arms=(
  [all]=""
  [ds]="algorithm.dynamic_sampling=true"
  [ds_szv]="algorithm.dynamic_sampling=true data.selection=skip_zero_variance"
  [ds_prb]="algorithm.dynamic_sampling=true data.selection=pass_rate_band"
)
for seed in $seeds; do
  for arm in all ds ds_szv ds_prb; do
    dir="$out/$arm/seed_$seed"
    if [[ -f "$dir/done" ]]; then continue; fi
    rm -rf "$dir"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$rlvr" train -c "$here/grpo.yaml" model.path="$sft" run.seed="$seed" run.output_dir="$dir" \
      run.threads="$threads" ${arms[$arm]} > "$out/$arm.seed_$seed.log" 2>&1 || { tail -30 "$out/$arm.seed_$seed.log"; exit 1; }
    python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)" > "$dir/done"
  done
done
python3 "$here/summarize.py" "$out" "$target" "$seeds"
