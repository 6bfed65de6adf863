#!/usr/bin/env bash
# Prompt selection before generation vs dynamic sampling: generated tokens and wall time needed to reach a fixed
# held-out accuracy, and the final accuracy, for five arms x seeds, all from the same SFT checkpoint:
#   all    every prompt, every group trained on (no dynamic sampling)
#   ds     DAPO dynamic sampling alone (groups all correct / all wrong dropped after generation, refilled)
#   ds_szv dynamic sampling + data.selection=skip_zero_variance with selection_explore 0.5
#   ds_prb dynamic sampling + data.selection=pass_rate_band
#   ds_szv25 dynamic sampling + skip_zero_variance with selection_explore 0.25 (skips more)
# The training set mixes 512 of the quickstart's arithmetic problems (difficulty 1) with 512 of difficulty 2, which
# the quickstart's SFT model cannot solve (pass@8 1% on 100 of them): as in real RL datasets, many prompts are out
# of reach (all wrong) or solved (all right), and carry no signal. 64 prompts per step, so each prompt comes
# back every 16 steps or sooner (dynamic sampling consumes more). Held-out accuracy: greedy, 200 difficulty-1
# problems (bench/selection/grpo.yaml), every 5 steps.
#   bench/selection/run.sh RLVR_BINARY SFT_CHECKPOINT OUT [seeds="1 2 3"] [target=+0.04 (above the start) or e.g. 0.70] [threads=2]
# SFT_CHECKPOINT: e.g. the quickstart's runs/quickstart/sft/checkpoints/step_900. Prints a markdown table and writes
# OUT/summary.json.
set -euo pipefail
rlvr=$1 sft=$2 out=$3 seeds=${4:-"1 2 3"} target=${5:-+0.04} threads=${6:-2}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out"
if [[ ! -s "$out/train.jsonl" ]]; then
  "$rlvr" data generate -t arithmetic --difficulty 1 -n 512 --seed 1 --split train > "$out/train.tmp"
  "$rlvr" data generate -t arithmetic --difficulty 2 -n 512 --seed 1 --split train >> "$out/train.tmp"
  mv "$out/train.tmp" "$out/train.jsonl"
fi
declare -A arms=(
  [all]=""
  [ds]="algorithm.dynamic_sampling=true"
  [ds_szv]="algorithm.dynamic_sampling=true data.selection=skip_zero_variance data.selection_explore=0.5"
  [ds_prb]="algorithm.dynamic_sampling=true data.selection=pass_rate_band data.selection_explore=0.5"
  [ds_szv25]="algorithm.dynamic_sampling=true data.selection=skip_zero_variance data.selection_explore=0.25"
)
for seed in $seeds; do
  for arm in all ds ds_szv ds_prb ds_szv25; do
    dir="$out/$arm/seed_$seed"
    if [[ -f "$dir/done" ]]; then continue; fi
    rm -rf "$dir"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$rlvr" train -c "$here/grpo.yaml" model.path="$sft" data.train="$out/train.jsonl" run.seed="$seed" run.output_dir="$dir" \
      run.threads="$threads" ${arms[$arm]} > "$out/$arm.seed_$seed.log" 2>&1 || { tail -30 "$out/$arm.seed_$seed.log"; exit 1; }
    python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)" > "$dir/done"
  done
done
python3 "$here/summarize.py" "$out" "$target" "$seeds"
