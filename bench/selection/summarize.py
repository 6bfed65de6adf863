"""Summarises bench/selection/run.sh: per arm, over seeds, the generated tokens and wall time until the held-out
accuracy first reaches the target, the final accuracy, and the share of generated groups that carried signal."""
import json
import statistics
import sys
from pathlib import Path

out, target_arg, seeds = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split()
# "0.70": a fixed accuracy; "+0.04": 4 points above the run's own starting accuracy (the held-out problems
# depend on run.seed, so seeds start at different accuracies).
relative = target_arg.startswith("+")
target = float(target_arg)
arms = ["all", "ds", "ds_szv", "ds_prb", "ds_szv25"]


def one_run(d):
    rows = [json.loads(l) for l in open(d / "metrics.jsonl")]
    evals = [(r["step"], r["eval/pass@1"]) for r in rows if "eval/pass@1" in r]
    train = {r["step"]: r for r in rows if "tokens_generated_cumulative" in r}
    wall = 0.0
    reached = None
    goal = evals[0][1] + target if relative else target
    for step, acc in evals:
        if step > 0 and acc >= goal - 1e-12 and reached is None:
            reached = step
    def upto(step):
        return sum(train[s]["time/step"] for s in train if s <= step)
    res = {
        "final_accuracy": evals[-1][1],
        "start_accuracy": evals[0][1],
        "tokens_total": train[max(train)]["tokens_generated_cumulative"],
        "wall_total_s": upto(max(train)),
        "signal_frac": sum(train[s]["groups_with_signal"] for s in train)
        / sum(train[s].get("dynamic_sampling/groups_generated", train[s]["completions"] / 8) for s in train),
        "skipped": sum(train[s].get("selection/skipped", 0) for s in train),
    }
    if reached is not None:
        res["reached_step"] = reached
        res["tokens_to_target"] = train[reached]["tokens_generated_cumulative"]
        res["wall_to_target_s"] = upto(reached)
    return res


def ms(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.4g}"
    return f"{statistics.mean(xs):.4g} ± {statistics.stdev(xs):.2g}"


summary = {}
for arm in arms:
    runs = {s: one_run(out / arm / f"seed_{s}") for s in seeds if (out / arm / f"seed_{s}" / "done").exists()}
    summary[arm] = runs
json.dump({"target": target_arg, "runs": summary}, open(out / "summary.json", "w"), indent=1)
what = f"start + {target:.2f}" if relative else f"{target:.2f}"
print(f"target held-out accuracy {what} (greedy, 200 held-out problems); mean ± sd over seeds {', '.join(seeds)}")
print("| arm | start acc | final acc | reached (seeds) | tokens to target | wall s to target | tokens, all steps | "
      "groups with signal | prompts skipped |")
print("|---|---|---|---|---|---|---|---|---|")
for arm, runs in summary.items():
    r = list(runs.values())
    print(f"| {arm} | {ms([x['start_accuracy'] for x in r])} | {ms([x['final_accuracy'] for x in r])} | "
          f"{sum('reached_step' in x for x in r)}/{len(r)} | {ms([x.get('tokens_to_target') for x in r])} | "
          f"{ms([x.get('wall_to_target_s') for x in r])} | {ms([x['tokens_total'] for x in r])} | "
          f"{ms([x['signal_frac'] for x in r])} | {ms([x['skipped'] for x in r])} |")
ds = summary.get("ds", {})
for arm in ("ds_szv", "ds_prb", "ds_szv25"):
    ratios = [ds[s]["tokens_to_target"] / summary[arm][s]["tokens_to_target"] for s in summary.get(arm, {})
              if s in ds and "tokens_to_target" in ds[s] and "tokens_to_target" in summary[arm][s]]
    totals = [ds[s]["tokens_total"] / summary[arm][s]["tokens_total"] for s in summary.get(arm, {}) if s in ds]
    print(f"{arm}: dynamic sampling alone / {arm}, generated tokens to target: {ms(ratios)} (per seed "
          f"{', '.join(f'{x:.2f}' for x in ratios)}); over the whole run: {ms(totals)}")
