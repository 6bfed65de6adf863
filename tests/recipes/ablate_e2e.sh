#!/usr/bin/env bash
# rlvr ablate at reduced size (builtin:tiny, a few steps, one thread): 3 arms x 2 seeds plus one arm whose
# training data does not exist. The ablation is killed (SIGKILL) while a run is training; a second
# invocation must skip the finished runs (their files untouched), resume the interrupted one from its
# checkpoint (every step logged exactly once), report the broken arm's runs as failed without stopping the
# others, and write a report that parses; `rlvr ablate --report` must reproduce report.json byte for byte.
set -euo pipefail
rlvr=$1 out=$2
rm -rf "$out"
mkdir -p "$out"
abl=$out/abl
cat > "$out/ablation.yaml" <<EOF
name: e2e
output_dir: $abl
base_config: ""
base_overrides: [run.device=cpu, data.task_train_size=400, data.task_eval_size=12, rollout.group_size=4,
                 rollout.max_new_tokens=10, train.steps=6, train.prompts_per_step=8, train.micro_batch_size=32,
                 train.save_every=1, train.keep_last=1, optim.lr=1.0e-3, logging.console_every=1]
seeds: [1, 2]
arms:
  - name: accuracy
  - name: plus_format
    rewards:
      - {name: math_accuracy, weight: 1.0}
      - {name: format, weight: 0.5, args: {style: boxed}}
  - name: broken
    overrides: [data.train=$out/no_such_file.jsonl]
controls: [random_reward]
eval: {samples: 2, temperature: 1.0}
schedule: {parallel: 1, threads: 1}
report: {bootstrap: 200}
EOF

fail() { echo "ablate_e2e: $*"; exit 1; }
run_dir() { echo "$abl/runs/$1/seed_$2"; }

# 1. Start, wait until one run has finished and another is mid-training, then kill the ablation.
"$rlvr" ablate -c "$out/ablation.yaml" --progress-every 1 > "$out/first.log" 2>&1 &
pid=$!
victim=""
for _ in $(seq 1 1200); do
  if [ -f "$(run_dir accuracy 1)/ablate_run.json" ]; then
    for d in "$abl"/runs/*/seed_*; do
      [ -f "$d/ablate_run.json" ] && continue
      if ls -d "$d"/checkpoints/step_* > /dev/null 2>&1 && ! [ -d "$d/checkpoints/step_6" ]; then victim=$d; break; fi
    done
  fi
  [ -n "$victim" ] && break
  kill -0 "$pid" 2> /dev/null || { cat "$out/first.log"; fail "ablate exited before it could be interrupted"; }
  sleep 0.1
done
[ -n "$victim" ] || fail "no run was seen mid-training"
kill -KILL "$pid"
wait "$pid" 2> /dev/null || true
echo "killed the ablation while $victim was training"
finished=()
for d in "$abl"/runs/*/seed_*; do [ -f "$d/ablate_run.json" ] && grep -q '"ok"' "$d/ablate_run.json" && finished+=("$d"); done
[ ${#finished[@]} -ge 1 ] || fail "no run had finished before the kill"
for d in "${finished[@]}"; do stat -c '%Y %s' "$d/ablate_run.json" "$d/eval_after.json" "$d/metrics.jsonl"; done > "$out/before_resume.stat"

# 2. Resume: waits for the killed run's child to checkpoint and exit (it holds the lock), then finishes.
set +e
"$rlvr" ablate -c "$out/ablation.yaml" --progress-every 5 > "$out/second.log" 2>&1
rc=$?
set -e
cat "$out/second.log"
[ "$rc" = 1 ] || fail "second invocation: exit $rc, expected 1 (the broken arm's runs fail, the others finish)"
grep -q "(${#finished[@]} already finished)" "$out/second.log" || fail "second invocation did not skip the finished runs"
for d in "${finished[@]}"; do stat -c '%Y %s' "$d/ablate_run.json" "$d/eval_after.json" "$d/metrics.jsonl"; done > "$out/after_resume.stat"
cmp "$out/before_resume.stat" "$out/after_resume.stat" || fail "a finished run was redone"
grep -q "resuming from" "$victim/train.log" || fail "$victim was not resumed from its checkpoint"
python3 - "$victim/metrics.jsonl" <<'EOF'
import json, sys
steps = [json.loads(l)["step"] for l in open(sys.argv[1]) if "reward/mean" in l]
assert steps == list(range(1, 7)), f"interrupted run logged steps {steps}, expected 1..6 once each"
EOF

# 3. The report parses and says what happened.
python3 - "$abl/report.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
arms = {a["name"]: a for a in r["arms"]}
assert set(arms) == {"accuracy", "plus_format", "broken", "random_reward"}, arms.keys()
for name in ["accuracy", "plus_format", "random_reward"]:
    a = arms[name]
    assert [x["status"] for x in a["runs"]] == ["ok", "ok"], (name, a["runs"])
    assert a["finished_seeds"] == 2
    assert 0 <= a["after"]["mean@k"] <= 1
    assert a["training"]["tokens_generated"] > 0 and a["training"]["wall_seconds"] > 0
    assert a["gain"]["lo"] <= a["gain"]["estimate"] <= a["gain"]["hi"]
for name in ["plus_format", "random_reward"]:
    v = arms[name]["vs_baseline"]
    assert v["lo"] <= v["estimate"] <= v["hi"] and v["seeds"] == [1, 2]
    assert arms[name]["verdict"] in ("better than baseline", "not distinguishable from baseline", "worse than baseline")
assert arms["accuracy"]["verdict"] == "baseline"
assert [x["status"] for x in arms["broken"]["runs"]] == ["failed", "failed"]
assert arms["random_reward"]["rubric"][0]["name"] == "random_reward"
assert any("seed" in w for w in r["warnings"]), r["warnings"]   # 2 seeds < 3: a power warning
assert r["held_out_problems"] == 12
print("report.json ok:", {n: a["verdict"] for n, a in arms.items()})
EOF
grep -q "random_reward" "$abl/report.md" || fail "report.md lacks the control arm"
for p in train_reward train_accuracy; do
  head -c 8 "$abl/plots/$p.png" | od -c | grep -q 'P   N   G' || fail "plots/$p.png is not a PNG"
done

# 4. --report regenerates the same report from the directory alone.
cp "$abl/report.json" "$out/report.first.json"
"$rlvr" ablate --report "$abl"
cmp "$abl/report.json" "$out/report.first.json" || fail "rlvr ablate --report gave a different report.json"
echo "ablate_e2e: ok"
