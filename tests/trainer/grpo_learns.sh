#!/usr/bin/env bash
# The learning test: the README's quickstart at full length (committed configs, seed 1234, CPU, one thread per
# process so that parallel ctest jobs do not thrash OpenMP): SFT warm start, then 30 GRPO steps. GRPO must raise
# held-out greedy accuracy on the 200 held-out problems by at least MARGIN over its starting checkpoint.
#
# Why 6 points: the standard error of an accuracy measured on 200 problems is sqrt(p(1-p)/200) = 3.1 points at
# p = 0.25, so a 6-point gain (12 more problems solved) is about 2 standard errors: not the luck of a few flips.
# Seeded runs on the build box gave +11 (the committed config) and +12 (64 prompts x G=16, lr 3e-5); lr 1e-3
# collapses the policy (reward 0.11 -> 0 in 6 steps), so the test fails on an update that goes the wrong way.
# SFT must also have taught something (accuracy above the untrained model's), or the GRPO gain means little.
set -euo pipefail
rlvr=$1 out=$2
MARGIN=${MARGIN:-0.06}
rm -rf "$out"
"$rlvr" quickstart --out "$out" --sft run.threads=1 --grpo run.threads=1 > "$out.log" 2>&1 || { tail -40 "$out.log"; exit 1; }
python3 - "$out/summary.json" "$MARGIN" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
margin = float(sys.argv[2])
before, sft, grpo = s["accuracy_before_sft"], s["accuracy_after_sft"], s["accuracy_after_grpo"]
print(f"held-out accuracy ({s['held_out_problems']} problems): before SFT {before:.3f}, after SFT {sft:.3f}, "
      f"after {s['grpo_steps']} GRPO steps {grpo:.3f} (gain {100 * (grpo - sft):+.1f} points, need {100 * margin:+.1f})")
assert sft > before, "SFT did not raise accuracy"
assert grpo - sft >= margin - 1e-9, "GRPO did not raise held-out accuracy by the margin"
PY
