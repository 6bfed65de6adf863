#!/usr/bin/env bash
# Data parallelism on CPU: `rlvr launch --nproc 2` (Gloo over loopback) must reproduce the single-process run on
# the same global batch with the same seed: parameters after K steps equal to 1e-5 and the logged metrics
# match. (A rank that dies or hangs is covered by test_dist.)
set -euo pipefail
rlvr=$1 py=$2 out=$3
rm -rf "$out"; mkdir -p "$out"
cfg="$out/tiny.yaml"
cat > "$cfg" <<'YAML'
run: {seed: 11, device: cpu, threads: 1}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 200, task_eval_size: 8}
rollout: {group_size: 4, max_new_tokens: 8, max_batch_seqs: 64}
algorithm: {advantage: grpo, loss_agg: token-mean}
optim: {lr: 1.0e-3}
train: {steps: 3, prompts_per_step: 4, micro_batch_size: 8}
distributed: {timeout_s: 60}
YAML
"$rlvr" train -c "$cfg" run.output_dir="$out/one" > "$out/one.log" 2>&1 || { cat "$out/one.log"; exit 1; }
"$rlvr" launch --nproc 2 -- train -c "$cfg" run.output_dir="$out/two" > "$out/two.log" 2>&1 || { cat "$out/two.log"; exit 1; }
"$py" - "$out/one" "$out/two" <<'PY'
import json, sys
import numpy as np
from safetensors.numpy import load_file
one, two = sys.argv[1], sys.argv[2]
a = load_file(f"{one}/checkpoints/step_3/model.safetensors")
b = load_file(f"{two}/checkpoints/step_3/model.safetensors")
assert a.keys() == b.keys(), (a.keys() ^ b.keys())
worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
print(f"max |param(1 rank) - param(2 ranks)| after 3 steps = {worst:.3g}")
assert worst < 1e-5, worst
def metrics(d):
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
    return [{k: v for k, v in r.items() if not (k.startswith("time/") or k == "tokens_per_s")} for r in rows]
for ra, rb in zip(metrics(one), metrics(two), strict=True):
    for k in ra:
        va, vb = ra[k], rb[k]
        assert (va is None and vb is None) or abs(va - vb) <= 1e-4 * max(1.0, abs(va)), (ra["step"], k, va, vb)
print("metrics match")
PY
