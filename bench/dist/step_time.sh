#!/usr/bin/env bash
# GRPO step time for 1 and 2 ranks on the same global batch (data parallel over Gloo on loopback), from each
# run's metrics.jsonl: median seconds per step over steps 2..N (step 1 includes warm-up), split into phases.
# Runs: 1 rank x 1 thread, 1 rank x 2 threads (the same cores as 2 ranks, used by OpenMP), 2 ranks x 1 thread,
# and 2 ranks x 1 thread with distributed.zero_stage 1 or with distributed.overlap_grad_reduce false.
#   bench/dist/step_time.sh [STEPS]          (RLVR_BUILD: build dir, default ./build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/scripts/env.sh"
STEPS=${1:-8}
RLVR="$RLVR_BUILD/cli/rlvr"
cmake --build "$RLVR_BUILD" --target rlvr >/dev/null
OUT="$RLVR_BUILD/bench/dist/step_time"
rm -rf "$OUT"; mkdir -p "$OUT"
cat > "$OUT/bench.yaml" <<YAML
run: {seed: 5, device: cpu}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 5000}
rollout: {group_size: 8, max_new_tokens: 32, max_batch_seqs: 256}
algorithm: {advantage: grpo, loss_agg: token-mean}
optim: {lr: 5.0e-5}
train: {steps: $STEPS, prompts_per_step: 32, micro_batch_size: 64, eval_every: 0}
logging: {console_every: 1000}
YAML
"$RLVR" train -c "$OUT/bench.yaml" run.threads=1 run.output_dir="$OUT/r1t1" > "$OUT/r1t1.log" 2>&1
"$RLVR" train -c "$OUT/bench.yaml" run.threads=2 run.output_dir="$OUT/r1t2" > "$OUT/r1t2.log" 2>&1
"$RLVR" launch --nproc 2 -- train -c "$OUT/bench.yaml" run.threads=1 run.output_dir="$OUT/r2t1" > "$OUT/r2t1.log" 2>&1
"$RLVR" launch --nproc 2 -- train -c "$OUT/bench.yaml" run.threads=1 run.output_dir="$OUT/r2z1" distributed.zero_stage=1 \
  > "$OUT/r2z1.log" 2>&1
"$RLVR" launch --nproc 2 -- train -c "$OUT/bench.yaml" run.threads=1 run.output_dir="$OUT/r2sync" \
  distributed.overlap_grad_reduce=false > "$OUT/r2sync.log" 2>&1
"$RLVR_VENV/bin/python" - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def load(run):
    rows = [json.loads(l) for l in open(f"{out}/{run}/metrics.jsonl")]
    rows = [r for r in rows if "time/step" in r and r["step"] >= 2]
    med = lambda k: statistics.median(r[k] for r in rows)
    return {k: med(k) for k in ("time/step", "time/generate", "time/update")}
runs = {"1 rank x 1 thread": "r1t1", "1 rank x 2 threads": "r1t2", "2 ranks x 1 thread": "r2t1",
        "2 ranks, ZeRO-1": "r2z1", "2 ranks, no overlap": "r2sync"}
res = {name: load(d) for name, d in runs.items()}
print("32 prompts x G=8 = 256 completions per step (global), builtin:tiny, median over steps 2..N")
print(f"{'run':22} {'s/step':>8} {'generate':>9} {'update':>8} {'speedup vs 1x1':>15}")
base = res["1 rank x 1 thread"]["time/step"]
for name, r in res.items():
    print(f"{name:22} {r['time/step']:8.3f} {r['time/generate']:9.3f} {r['time/update']:8.3f} {base / r['time/step']:14.2f}x")
print(json.dumps(res))
PY
