#!/usr/bin/env bash
# Data parallelism on CPU: `rlvr launch --nproc 2` (Gloo over loopback) must reproduce the single-process run on
# the same global batch with the same seed: parameters after K steps equal to 1e-5 and the logged metrics
# match, held-out evaluation included (3 problems: ranks hold 2 and 1, weighted). More ranks than eval
# problems must still evaluate (no rank may hang on a metric the others lack). (A rank that dies or hangs is covered by test_dist.)
set -euo pipefail
rlvr=$1 py=$2 out=$3
rm -rf "$out"; mkdir -p "$out"
cfg="$out/tiny.yaml"
cat > "$cfg" <<'YAML'
run: {seed: 11, device: cpu, threads: 1}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 200, task_eval_size: 3}
rollout: {group_size: 4, max_new_tokens: 16, max_batch_seqs: 64}
# A fresh model is never right (accuracy 0 everywhere, so zero advantages and no update to compare); a length
# penalty over the whole budget (-length/16) varies between random completions and gives real advantages.
rewards: [{name: math_accuracy, weight: 1.0}, {name: soft_overlong, weight: 1.0, args: {max_tokens: 16, cache: 16}}]
algorithm: {advantage: grpo, loss_agg: token-mean}
# Ranks sum the same rows in another order (the update deals them to the ranks by tokens), so gradients differ
# by fp32 rounding; Adam's first step is lr * g / (|g| + eps), whose sensitivity near g = 0 is lr / eps: eps 1e-6
# keeps this a test of the data-parallel update, not of rounding amplified 100x by eps 1e-8.
optim: {lr: 1.0e-3, eps: 1.0e-6}
train: {steps: 3, prompts_per_step: 4, micro_batch_size: 8, eval_every: 3, save_every: 1, keep_last: 3}
distributed: {timeout_s: 60}
YAML
"$rlvr" train -c "$cfg" run.output_dir="$out/one" > "$out/one.log" 2>&1 || { cat "$out/one.log"; exit 1; }
"$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/two" > "$out/two.log" 2>&1 || { cat "$out/two.log"; exit 1; }
"$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/more_ranks" train.steps=1 train.eval_every=1 \
  data.task_eval_size=1 > "$out/more_ranks.log" 2>&1 || { cat "$out/more_ranks.log"; exit 1; }
grep -q '"eval/mean@1"' "$out/more_ranks/metrics.jsonl" || { echo "2 ranks, 1 eval problem: no eval metrics"; exit 1; }
# ZeRO-1 (optimizer state sharded over the 2 ranks) must give the same update, and a ZeRO-1 run stopped at step
# 2 and resumed (its checkpoint gathers the shards into the unsharded format) must continue as if uninterrupted.
"$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/zero" distributed.zero_stage=1 \
  > "$out/zero.log" 2>&1 || { cat "$out/zero.log"; exit 1; }
"$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/zero_resumed" distributed.zero_stage=1 train.steps=2 \
  > "$out/zero_resumed.log" 2>&1 || { cat "$out/zero_resumed.log"; exit 1; }
"$rlvr" launch --nproc 2 -- train -c "$cfg" --resume latest run.output_dir="$out/zero_resumed" distributed.zero_stage=1 \
  >> "$out/zero_resumed.log" 2>&1 || { cat "$out/zero_resumed.log"; exit 1; }
# Prompt selection before generation (4 training prompts, all wrong for a fresh model: from step 2 each is kept with
# probability 0.5^streak): both ranks must take the one-process decisions from the history gathered from both.
sel=(data.task_train_size=4 data.selection=skip_zero_variance data.selection_explore=0.5 train.eval_every=0)
"$rlvr" train -c "$cfg" run.output_dir="$out/sel_one" "${sel[@]}" > "$out/sel_one.log" 2>&1 || { cat "$out/sel_one.log"; exit 1; }
"$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/sel_two" "${sel[@]}" \
  > "$out/sel_two.log" 2>&1 || { cat "$out/sel_two.log"; exit 1; }
# PPO mini-batches and epochs: mini-batches are ranges of the global batch, so with 2 mini-batches of 2 groups
# rank 0 holds all of the first and rank 1 all of the second (each rank sits one optimizer step out).
ppo=(train.mini_batches=2 algorithm.ppo_epochs=2 train.eval_every=0)
"$rlvr" train -c "$cfg" run.output_dir="$out/ppo_one" "${ppo[@]}" > "$out/ppo_one.log" 2>&1 || { cat "$out/ppo_one.log"; exit 1; }
"$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/ppo_two" "${ppo[@]}" \
  > "$out/ppo_two.log" 2>&1 || { cat "$out/ppo_two.log"; exit 1; }
"$py" - "$out/one" "$out/two" "$out/zero" "$out/zero_resumed" "$out/sel_one" "$out/sel_two" "$out/ppo_one" "$out/ppo_two" <<'PY'
import json, sys
import numpy as np
from safetensors.numpy import load_file
one, two, zero, zero_resumed, sel_one, sel_two, ppo_one, ppo_two = sys.argv[1:9]
def max_diff(x, y):
    a = load_file(f"{x}/checkpoints/step_3/model.safetensors")
    b = load_file(f"{y}/checkpoints/step_3/model.safetensors")
    assert a.keys() == b.keys(), (a.keys() ^ b.keys())
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)
init = load_file(f"{one}/checkpoints/step_1/model.safetensors")
moved = max(float(np.abs(init[k] - load_file(f"{one}/checkpoints/step_3/model.safetensors")[k]).max()) for k in init)
print(f"max |param| change from step 1 to step 3 (1 rank): {moved:.3g}")
assert moved > 1e-4, "the updates are zero: the comparison would prove nothing"
for x, y, what, tol in [(one, two, "1 rank vs 2 ranks", 1e-5), (one, zero, "1 rank vs 2 ranks ZeRO-1", 1e-5),
                        (zero, zero_resumed, "ZeRO-1 vs ZeRO-1 resumed at step 2", 1e-6),
                        (sel_one, sel_two, "selection, 1 rank vs 2 ranks", 1e-5),
                        (ppo_one, ppo_two, "mini_batches 2 x ppo_epochs 2, 1 rank vs 2 ranks", 1e-5)]:
    worst = max_diff(x, y)
    print(f"max |param| difference after 3 steps, {what}: {worst:.3g}")
    assert worst < tol, (what, worst)
def metrics(d):
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
    return [{k: v for k, v in r.items() if not (k.startswith("time/") or k == "tokens_per_s")} for r in rows]
skipped = sum(r.get("selection/skipped", 0) for r in metrics(sel_one))
print(f"selection: {skipped:.0f} prompts skipped over 3 steps (1 rank)")
assert skipped > 0, "nothing was skipped: the selection comparison would prove nothing"
print(f"max |param| difference after 3 steps, mini_batches 2 x ppo_epochs 2 vs 1 x 1: {max_diff(one, ppo_one):.3g}")
assert max_diff(one, ppo_one) > 1e-4, "4 optimizer steps per step moved the weights like 1: the comparison proves nothing"
for base, other in ((one, two), (one, zero), (sel_one, sel_two), (ppo_one, ppo_two)):
    for ra, rb in zip(metrics(base), metrics(other), strict=True):
        for k in ra:
            va, vb = ra[k], rb[k]
            assert (va is None and vb is None) or abs(va - vb) <= 1e-4 * max(1.0, abs(va)), (other, ra["step"], k, va, vb)
# The update deals each mini-batch's completions to the ranks by tokens: never worse balanced than as generated.
steps = [r for r in metrics(two) + metrics(ppo_two) if "loss/pg_loss" in r]
assert steps and all("update/rank_imbalance" in r for r in steps), "no rank balance metrics"
for r in steps:
    assert r["update/rank_imbalance"] <= r["update/rank_imbalance_before"] + 1e-12, r
print("rank token imbalance (max / mean) before -> after balancing: " +
      ", ".join(f'{r["update/rank_imbalance_before"]:.3f} -> {r["update/rank_imbalance"]:.3f}' for r in steps))
assert any("eval/mean@1" in r for r in metrics(one)), "no eval metrics logged"
print("metrics match (eval included)")
PY
