#!/usr/bin/env bash
# bf16 working weights with fp32 masters under data parallelism (2 CPU ranks, Gloo): 2 ranks track 1 process,
# ZeRO-1 (masters and moments sharded) equals no ZeRO, a ZeRO-1 run resumed at step 1 equals the uninterrupted
# one, and a 2-rank ZeRO-1 checkpoint resumes in 1 process. Compared on the fp32 masters
# (trainer_state/master_weights.safetensors).
#
# Tolerances. 1 vs 2 ranks: each rank's bf16 .grad() is rounded (relative 2^-8) before the fp32 sum, where one
# process rounds the whole batch's; Adam's step lr * m / (sqrt(v) + eps) passes a relative change d of g on as at
# most lr * d / 4 per element, except where the rounding flips the sign of a cancelling g (up to 2 lr, rare). So the
# median element agrees to lr * 2^-10 and the L2 norm of the difference is a small part of the update's (< 0.1;
# a lost or doubled rank's gradient changes every element by ~lr, i.e. ~1.0). ZeRO-1 vs no ZeRO on 2 ranks: the
# same fp32 gradient sums, the AdamW arithmetic in another order (fp32, ~1e-7 relative), so 1e-6 relative of the
# update unless a master sits on a bf16 rounding midpoint (then the next step's gradients move slightly): the same
# L2 criterion at 1e-3. Resume: the masters and moments are saved exactly, so 1e-7 (two_ranks.sh allows 1e-6).
set -euo pipefail
rlvr=$1 py=$2 out=$3
rm -rf "$out"; mkdir -p "$out"
cfg="$out/tiny.yaml"
cat > "$cfg" <<'YAML'
run: {seed: 11, device: cpu, threads: 1}
model: {path: "builtin:tiny", dtype: bf16}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 200, task_eval_size: 3}
rollout: {group_size: 4, max_new_tokens: 16, max_batch_seqs: 64}
# A fresh model is never right: a length penalty over the budget gives real advantages.
rewards: [{name: math_accuracy, weight: 1.0}, {name: soft_overlong, weight: 1.0, args: {max_tokens: 16, cache: 16}}]
algorithm: {advantage: grpo, loss_agg: token-mean}
optim: {lr: 1.0e-3, eps: 1.0e-6}
train: {steps: 2, prompts_per_step: 4, micro_batch_size: 8, save_every: 1, keep_last: 3}
distributed: {timeout_s: 60}
YAML
run() { local name=$1; shift; "$@" > "$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }; }
run one "$rlvr" train -c "$cfg" run.output_dir="$out/one"
run two "$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/two"
run zero "$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/zero" distributed.zero_stage=1
run zero_resumed "$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/zero_resumed" distributed.zero_stage=1 train.steps=1
run zero_resumed2 "$rlvr" launch --nproc 2 -- train -c "$cfg" --resume latest run.output_dir="$out/zero_resumed" distributed.zero_stage=1
# The 2-rank ZeRO-1 checkpoint of step 1, resumed by one process without ZeRO.
mkdir -p "$out/one_from_zero/checkpoints"
cp -r "$out/zero_resumed/checkpoints/step_1" "$out/one_from_zero/checkpoints/"
run one_from_zero "$rlvr" train -c "$cfg" --resume latest run.output_dir="$out/one_from_zero"
grep -q "bf16 weights: the fp32 gradients are all-reduced after the backward" "$out/two.log" \
  || { echo "2 ranks bf16: expected the fp32 all-reduce after the backward"; exit 1; }
"$py" - "$out" <<'PY'
import sys
import numpy as np
import torch
from safetensors.numpy import load_file
from safetensors.torch import load_file as load_torch
out = sys.argv[1]
lr = 1e-3
def masters(run, step):
    return load_file(f"{out}/{run}/checkpoints/step_{step}/trainer_state/master_weights.safetensors")
def hf(run, step):
    return load_torch(f"{out}/{run}/checkpoints/step_{step}/model.safetensors")
one1, one2 = masters("one", 1), masters("one", 2)
moved = max(float(np.abs(one2[k] - one1[k]).max()) for k in one1)
print(f"max |master| change from step 1 to step 2 (1 process): {moved:.3g}")
assert moved > 1e-4, "the updates are zero: the comparisons would prove nothing"
w = hf("one", 2)
assert all(t.dtype == torch.bfloat16 for t in w.values()), "HF weights of a bf16 run must be bf16"
for k, t in w.items():
    assert torch.equal(t, torch.from_numpy(one2[k]).to(torch.bfloat16)), f"HF weight {k} is not the rounded master"
# The update of step 2 (from the common step-1 masters of the 1-process run) is the scale of the comparisons.
upd = np.sqrt(sum(float(((one2[k] - one1[k]) ** 2).sum()) for k in one1))
def compare(a, b, what, rel_tol, median_tol):
    d = np.concatenate([np.abs(a[k] - b[k]).ravel() for k in a])
    rel = float(np.sqrt((d.astype(np.float64) ** 2).sum())) / upd
    med = float(np.median(d))
    print(f"{what}: |diff| / |update| = {rel:.3g}, median |diff| = {med:.3g}, max |diff| = {float(d.max()):.3g}")
    assert a.keys() == b.keys(), what
    assert rel < rel_tol and med <= median_tol, (what, rel, med)
compare(one2, masters("two", 2), "1 process vs 2 ranks", 0.1, lr * 2 ** -10)
compare(masters("two", 2), masters("zero", 2), "2 ranks vs 2 ranks ZeRO-1", 1e-3, 1e-7)
compare(masters("zero", 2), masters("zero_resumed", 2), "ZeRO-1 vs ZeRO-1 resumed at step 1", 1e-7, 0.0)
compare(masters("zero", 2), masters("one_from_zero", 2), "2 ranks ZeRO-1 vs resumed in 1 process", 0.1, lr * 2 ** -10)
PY
