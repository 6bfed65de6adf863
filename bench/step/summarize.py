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


IMPLS = ("rlvr", "rlvr_shared", "trl")
res = {}
for impl in IMPLS:
    runs = load(impl)
    first = {k: statistics.mean(run[0][k] for run in runs) for k in KEYS}
    per_run = [{k: statistics.mean(s[k] for s in run[1:]) for k in KEYS} for run in runs]
    steady = {k: statistics.mean(p[k] for p in per_run) for k in KEYS}
    spread = {k: (min(p[k] for p in per_run), max(p[k] for p in per_run)) for k in KEYS}
    res[impl] = {"first": first, "steady": steady, "spread": spread, "runs": len(runs), "steps": len(runs[0])}
print("| per step (steady; range over runs) | rlvr | rlvr, `train.share_prompt` | TRL GRPOTrainer | TRL / rlvr | TRL / rlvr shared |")
print("|---|---:|---:|---:|---:|---:|")
for k in KEYS:
    unit = "" if k == "tokens" else " s"
    cells = []
    for impl in IMPLS:
        v, (lo, hi) = res[impl]["steady"][k], res[impl]["spread"][k]
        cells.append(f"{v:.3f}{unit} ({lo:.3g}-{hi:.3g})")
    t = res["trl"]["steady"][k]
    ratios = [f"{t / res[i]['steady'][k]:.2f}x" if res[i]["steady"][k] else "-" for i in ("rlvr", "rlvr_shared")]
    print(f"| {k} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
f = {i: res[i]["first"]["step_s"] for i in IMPLS}
print(f"| first step | {f['rlvr']:.3f} s | {f['rlvr_shared']:.3f} s | {f['trl']:.3f} s | {f['trl'] / f['rlvr']:.2f}x | "
      f"{f['trl'] / f['rlvr_shared']:.2f}x |")
json.dump(res, open(f"{out}/summary.json", "w"), indent=1)
