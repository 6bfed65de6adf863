#!/usr/bin/env python3
"""Table of bench/step/run.sh: per side, the first step and the mean (and spread over runs) of the others."""
import json, statistics, sys

out, repeats = sys.argv[1], int(sys.argv[2])
KEYS = ["step_s", "generate_s", "score_s", "update_s", "tokens"]


def load(impl):
    runs = []
    for r in range(1, repeats + 1):
        runs.append([json.loads(line) for line in open(f"{out}/{impl}_{r}.jsonl") if line.strip()])
    return runs


res = {}
for impl in ("rlvr", "trl"):
    runs = load(impl)
    first = {k: statistics.mean(run[0][k] for run in runs) for k in KEYS}
    per_run = [{k: statistics.mean(s[k] for s in run[1:]) for k in KEYS} for run in runs]
    steady = {k: statistics.mean(p[k] for p in per_run) for k in KEYS}
    spread = {k: (min(p[k] for p in per_run), max(p[k] for p in per_run)) for k in KEYS}
    res[impl] = {"first": first, "steady": steady, "spread": spread, "runs": len(runs), "steps": len(runs[0])}
print("| | rlvr | TRL GRPOTrainer | TRL / rlvr |")
print("|---|---:|---:|---:|")
for k in KEYS:
    a, b = res["rlvr"]["steady"][k], res["trl"]["steady"][k]
    ra, rb = res["rlvr"]["spread"][k], res["trl"]["spread"][k]
    unit = "" if k == "tokens" else " s"
    print(f"| {k} (steady, runs {ra[0]:.3g}-{ra[1]:.3g} / {rb[0]:.3g}-{rb[1]:.3g}) | {a:.3f}{unit} | {b:.3f}{unit} | "
          f"{b / a if a else float('nan'):.2f}x |")
a, b = res["rlvr"]["first"]["step_s"], res["trl"]["first"]["step_s"]
print(f"| first step | {a:.3f} s | {b:.3f} s | {b / a:.2f}x |")
json.dump(res, open(f"{out}/summary.json", "w"), indent=1)
