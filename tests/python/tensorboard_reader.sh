#!/usr/bin/env bash
# TensorBoard's own reader on rlvr's event files: a 3-step GRPO run (eval at steps 0 and 2) must show every
# metric of metrics.jsonl at every step with its value, and the config text; resuming from the step-2
# checkpoint to step 4 (step 3 was already written: the orphan of a crash) must leave each step once.
#   tensorboard_reader.sh RLVR_BIN PYTHON WORK_DIR
set -euo pipefail
rlvr=$1 py=$2 work=$3
"$py" -c "import tensorboard" 2>/dev/null || { echo "SKIP: the tensorboard package is not importable by $py"; exit 0; }
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work"
cat > "$work/tiny.yaml" <<YAML
run: {seed: 7, device: cpu, threads: 1, output_dir: $work/run}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 64, task_eval_size: 4}
rollout: {group_size: 4, max_new_tokens: 8, max_batch_seqs: 64}
rewards:
  - {name: math_accuracy}
  - {name: soft_overlong, args: {max_tokens: 8, cache: 8}}
train: {steps: 3, prompts_per_step: 2, micro_batch_size: 8, save_every: 2, eval_every: 2, keep_last: 5}
logging: {progress_every_s: 0}
YAML
"$rlvr" train --config "$work/tiny.yaml" > "$work/first.out" 2> "$work/first.err"
# the plain progress lines of a non-terminal (every update with progress_every_s 0)
grep -q "^train 0/3 (0%)" "$work/first.err" || { echo "no plain progress line in:"; cat "$work/first.err"; exit 1; }
grep -q "| generate .* completions/s" "$work/first.err" || { echo "no generation progress"; exit 1; }
"$py" "$here/tensorboard_check.py" "$work/run" --expect-steps 0,1,2,3 --save-state "$work/first.json"
"$rlvr" train --config "$work/tiny.yaml" --resume "$work/run/checkpoints/step_2" --overwrite train.steps=4 logging.progress=false \
  > "$work/resume.out" 2> "$work/resume.err"
# logging.progress=false silences the progress lines (the first launch printed them)
if grep -Eq "^train [0-9]+/|completions/s( |$)" "$work/resume.err"; then
  echo "logging.progress=false still printed progress:"; cat "$work/resume.err"; exit 1
fi
"$py" "$here/tensorboard_check.py" "$work/run" --expect-steps 0,1,2,3,4 --first-state "$work/first.json"
echo "tensorboard_reader: ok"
