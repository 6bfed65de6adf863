#!/usr/bin/env bash
# The CLI's promises: --version names torch 2.11.0; config errors exit 2 with file, line, key and suggestion;
# commands fail cleanly on bad input.
set -uo pipefail
rlvr=$1
fail() { echo "FAILED: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

ver=$("$rlvr" --version)
grep -q '^torch 2.11.0' <<<"$ver" || fail "--version does not show torch 2.11.0"

printf 'algorithm:\n  clip_low: 0.2\n  clip_hgh: 0.28\n' > "$tmp/x.yaml"
out=$("$rlvr" config -c "$tmp/x.yaml" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "unknown key: exit $rc, want 2"
echo "$out" | grep -q "unknown key 'algorithm.clip_hgh' ($tmp/x.yaml:3); did you mean 'algorithm.clip_high'?" || fail "unknown key message: $out"

out=$("$rlvr" config rollout.group_size=1 2>&1); rc=$?
[ $rc -eq 2 ] || fail "bad value: exit $rc"
echo "$out" | grep -q "rollout.group_size must be an integer in \[2, 4096\], got '1' (command-line override)" \
  || fail "bad value message: $out"

out=$("$rlvr" train -c "$tmp/missing.yaml" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "missing config: exit $rc"

"$rlvr" config -c configs/quickstart_grpo.yaml rewards.format.weight=0 >/dev/null 2>&1 && fail "override of an absent reward accepted"
resolved=$("$rlvr" config -c configs/quickstart_grpo.yaml rewards.math_accuracy.weight=0.5)
grep -q "weight: 0.5" <<<"$resolved" || fail "reward weight override"

# Training configs load as run configs; ablation files (a different schema) are checked by `rlvr ablate`'s tests.
for f in configs/*.yaml; do
  case "$(basename "$f")" in ablation_*) continue ;; esac
  "$rlvr" config -c "$f" >/dev/null || fail "$f does not load"
done

printf '{"gold": "1/2", "pred": "\\\\boxed{0.5}"}\nnot json\n' > "$tmp/cases.jsonl"
"$rlvr" verify --cases "$tmp/cases.jsonl" >/dev/null 2>&1 && fail "verify accepted a bad JSON line"
# --resume with no value takes the latest checkpoint, also when an override follows it.
cat > "$tmp/t.yaml" <<YAML
run: {seed: 7, device: cpu, threads: 1, output_dir: $tmp/run}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 100, task_eval_size: 8}
rollout: {group_size: 4, max_new_tokens: 8}
train: {steps: 1, prompts_per_step: 4}
YAML
"$rlvr" train -c "$tmp/t.yaml" >/dev/null 2>&1 || fail "tiny train run"
"$rlvr" train -c "$tmp/t.yaml" --resume train.steps=2 >"$tmp/resume.log" 2>&1 || { cat "$tmp/resume.log"; fail "--resume"; }
grep -q "resuming from $tmp/run/checkpoints/step_1" "$tmp/resume.log" || fail "--resume did not resume step_1"
test -f "$tmp/run/checkpoints/step_2/model.safetensors" || fail "no step_2 checkpoint after --resume"
echo "cli_errors: ok"
