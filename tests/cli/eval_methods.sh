#!/usr/bin/env bash
# rlvr eval end to end on a briefly trained tiny model: the checkpoint's own prompt format is used (and the command
# line wins over it), every voting method reports, the online methods stop some paths and agree with the offline
# replay (one sequence at a time, so the shared paths are bit-identical), a thinking budget is forced, and
# --run evaluates every checkpoint into a table, JSON and PNG.
set -euo pipefail
rlvr=$1 out=$2
rm -rf "$out"
mkdir -p "$out"
common=(run.threads=1 data.task_eval_size=12 rollout.max_new_tokens=24)
"$rlvr" sft -c configs/quickstart_sft.yaml "${common[@]}" train.steps=30 train.prompts_per_step=16 train.micro_batch_size=16 \
  train.save_every=15 train.keep_last=2 \
  run.output_dir="$out/sft" 'data.template_string=Question {prompt} Answer' > "$out/sft.log" 2>&1 \
  || { tail -20 "$out/sft.log"; exit 1; }
ckpt="$out/sft/checkpoints/step_30"
test -f "$ckpt/trainer_state/config.yaml"

# 1. The prompt format comes from the checkpoint, the command line overrides it.
"$rlvr" eval --model "$ckpt" --data builtin:arithmetic -k 2 --limit 4 "${common[@]}" --out "$out/fmt.json" \
  > "$out/fmt.log" 2>&1 || { cat "$out/fmt.log"; exit 1; }
grep -q "template_string='Question {prompt} Answer'" "$out/fmt.log" || { echo "checkpoint format not used"; cat "$out/fmt.log"; exit 1; }
"$rlvr" eval --model "$ckpt" --data builtin:arithmetic -k 2 --limit 4 "${common[@]}" --out "$out/fmt2.json" \
  'data.template_string=Q {prompt}' > "$out/fmt2.log" 2>&1 || { cat "$out/fmt2.log"; exit 1; }
grep -q "template_string='Q {prompt}'" "$out/fmt2.log" || { echo "override did not win"; cat "$out/fmt2.log"; exit 1; }

# 1b. --seed changes the samples, not the builtin task's problems (run.seed generates those).
for s in 5 6; do
  "$rlvr" eval --model "$ckpt" --data builtin:arithmetic -k 2 --limit 4 --temperature 1.0 --seed $s "${common[@]}" \
    --per-sample "$out/seed$s.jsonl" --out "$out/seed$s.json" > "$out/seed$s.log" 2>&1 || { cat "$out/seed$s.log"; exit 1; }
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
a, b = ([json.loads(l) for l in open(f"{out}/seed{s}.jsonl")] for s in (5, 6))
assert [(x["id"], x["reference"]) for x in a] == [(x["id"], x["reference"]) for x in b], "--seed changed the problems"
assert [x["text"] for x in a] != [x["text"] for x in b], "--seed did not change the samples"
PY

# 2. Every method, online agreement and stopping, one sequence at a time.
methods=maj,conf-mean,conf-lowest@10,conf-tail@90,conf-bottom10,short-2,online-low,online-high
"$rlvr" eval --model "$ckpt" --data builtin:arithmetic -k 8 --temperature 1.0 --limit 12 --aggregate "$methods" \
  --warmup 3 --conf-window 4 "${common[@]}" rollout.max_batch_seqs=1 --out "$out/methods.json" > "$out/methods.log" 2>&1 \
  || { cat "$out/methods.log"; exit 1; }

# 3. A thinking budget opened by the prompt is forced.
"$rlvr" eval --model "$ckpt" --data builtin:arithmetic -k 2 --temperature 1.0 --limit 4 --max-think-tokens 3,6 \
  "${common[@]}" 'data.template_string=Q {prompt} <think>' --out "$out/think.json" > "$out/think.log" 2>&1 \
  || { cat "$out/think.log"; exit 1; }

# 4. Every checkpoint of the run.
"$rlvr" eval --run "$out/sft" --data builtin:arithmetic -k 2 --limit 4 --aggregate maj,conf-lowest@50 "${common[@]}" \
  > "$out/run.log" 2>&1 || { cat "$out/run.log"; exit 1; }

python3 - "$out" "$methods" <<'PY'
import json, sys
out, methods = sys.argv[1], sys.argv[2].split(",")
m = json.load(open(f"{out}/methods.json"))
for name in methods:
    for key in ("accuracy", "tokens", "tokens_per_correct", "wall_s"):
        assert f"agg/{name}/{key}" in m, (name, key)
for name in ("online-low", "online-high"):
    assert m[f"agg/{name}/agreement_with_offline"] == 1.0, (name, m[f"agg/{name}/agreement_with_offline"])
# online-low keeps only paths above the warm-up's 90th percentile: it must stop some and save tokens
assert m["agg/online-low/stopped_frac"] > 0, m["agg/online-low/stopped_frac"]
assert m["agg/online-low/tokens"] < m["agg/maj/tokens"], (m["agg/online-low/tokens"], m["agg/maj/tokens"])
assert m["agg/short-2/tokens"] <= m["agg/maj/tokens"]
assert m["aggregation"]["window"] == 4 and m["aggregation"]["warmup"] == 3
t = json.load(open(f"{out}/think.json"))
b = t["by_think_budget"]
assert [x["max_think_tokens"] for x in b] == [3, 6]
assert b[0]["think/forced_rate"] > 0, b[0]
assert b[0]["think/tokens_mean"] <= 3 + 1e-9, b[0]
r = json.load(open(f"{out}/sft/eval/run_eval.json"))
steps = [c["step"] for c in r["checkpoints"]]
assert steps == [15, 30], steps
assert all("agg/conf-lowest@50/accuracy" in c for c in r["checkpoints"])
assert open(f"{out}/sft/eval/accuracy_vs_step.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
print("eval_methods: ok", {k: m[k] for k in ("agg/online-low/stopped_frac", "agg/online-low/tokens", "agg/maj/tokens")})
PY
