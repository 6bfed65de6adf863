#!/usr/bin/env bash
# The run-directory policy, crash debris, resume rules, a full disk, rendezvous deadlines, hostile model and
# data files, all through the rlvr binary on builtin:tiny (1-2 steps, 1 thread). Each block names the defect
# it guards; a failure prints the output it saw.
set -uo pipefail
rlvr=$1
fail() { echo "FAILED: $*"; exit 1; }
tmp=$(mktemp -d); mnt=""
cleanup() { [ -n "$mnt" ] && umount "$mnt" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
sum() { md5sum "$@" | awk '{print $1}' | tr '\n' ' '; }
# A pid that is certainly dead: a finished child's.
sleep 0 & dead=$!; wait $dead

cat > "$tmp/t.yaml" <<YAML
run: {seed: 7, device: cpu, threads: 1, output_dir: $tmp/run}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 64, task_eval_size: 8}
rollout: {group_size: 2, max_new_tokens: 4}
train: {steps: 1, prompts_per_step: 2, keep_last: 5}
logging: {console_every: 100}
YAML

# --- a second `rlvr train` into the same run directory is refused and changes nothing -----------------------
"$rlvr" train -c "$tmp/t.yaml" >"$tmp/a.log" 2>&1 || { cat "$tmp/a.log"; fail "first tiny run"; }
before=$(sum "$tmp/run/metrics.jsonl" "$tmp/run/config.yaml" "$tmp/run/checkpoints/step_1/model.safetensors")
out=$("$rlvr" train -c "$tmp/t.yaml" optim.lr=2e-6 2>&1); rc=$?
[ $rc -eq 2 ] || { echo "$out"; fail "second run into the same directory: exit $rc, want 2"; }
grep -q "already holds a run" <<<"$out" && grep -q -- "--resume" <<<"$out" && grep -q -- "--overwrite" <<<"$out" \
  || fail "refusal message: $out"
[ "$(wc -l <<<"$out")" -le 2 ] || fail "refusal is more than two lines: $out"
[ "$(sum "$tmp/run/metrics.jsonl" "$tmp/run/config.yaml" "$tmp/run/checkpoints/step_1/model.safetensors")" = "$before" ] \
  || fail "the refused run changed the earlier run's files"
# --overwrite starts afresh.
"$rlvr" train -c "$tmp/t.yaml" --overwrite >"$tmp/o.log" 2>&1 || { cat "$tmp/o.log"; fail "--overwrite"; }
grep -q "deleted the earlier run" "$tmp/o.log" || fail "--overwrite did not say what it deleted"
[ "$(wc -l < "$tmp/run/metrics.jsonl")" -eq 1 ] || fail "--overwrite: metrics.jsonl should hold 1 step"
# --overwrite never deletes a directory that is not a run directory.
mkdir -p "$tmp/notarun"; echo precious > "$tmp/notarun/thesis.tex"
out=$("$rlvr" train -c "$tmp/t.yaml" --overwrite run.output_dir="$tmp/notarun" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "not an rlvr run directory" <<<"$out" || fail "--overwrite on a foreign directory: $rc $out"
[ -f "$tmp/notarun/thesis.tex" ] || fail "--overwrite deleted a foreign file"

# --- debris of killed runs is removed on resume ---------------------------------------------------------------
ck="$tmp/run/checkpoints"
cp -r "$ck/step_1" "$ck/.step_2.tmp.$dead"                 # a checkpoint being written when the run was killed
mkdir -p "$ck/step_0/trainer_state"; cp "$ck/step_1/config.json" "$ck/step_0/"   # a prune killed midway
cp -r "$ck/step_1" "$ck/.step_0.old.$dead"                 # a prune killed after its rename
echo half > "$tmp/run/config.yaml.tmp.$dead"               # an atomic write killed midway
cp -r "$ck/step_1" "$ck/.step_5.tmp.$$"                    # a LIVE process's temporary: must stay
"$rlvr" train -c "$tmp/t.yaml" --resume train.steps=2 >"$tmp/r.log" 2>&1 || { cat "$tmp/r.log"; fail "resume with debris"; }
for p in "$ck/.step_2.tmp.$dead" "$ck/step_0" "$ck/.step_0.old.$dead" "$tmp/run/config.yaml.tmp.$dead"; do
  [ ! -e "$p" ] || fail "debris $p survived a resume"
  grep -q "removed debris of an interrupted run: $p" "$tmp/r.log" || fail "removal of $p not logged"
done
[ -e "$ck/.step_5.tmp.$$" ] || fail "a live process's temporary was removed"
rm -rf "$ck/.step_5.tmp.$$"
[ -f "$ck/step_2/trainer_state/state.json" ] || fail "no step_2 after the resume"

# --- resume rules ---------------------------------------------------------------------------------------------
cfg_before=$(sum "$tmp/run/config.yaml")
out=$("$rlvr" train -c "$tmp/t.yaml" --resume train.steps=3 rollout.group_size=4 model.path=builtin:small 2>&1); rc=$?
[ $rc -eq 2 ] || { echo "$out"; fail "resume with a changed group size and model: exit $rc, want 2"; }
grep -q "rollout.group_size: 2 -> 4" <<<"$out" && grep -q "model.path" <<<"$out" \
  && grep -q "run.allow_resume_changes" <<<"$out" || fail "resume refusal message: $out"
[ "$(sum "$tmp/run/config.yaml")" = "$cfg_before" ] || fail "a refused resume rewrote config.yaml"
[ ! -e "$ck/step_3" ] || fail "a refused resume trained"
out=$("$rlvr" train -c "$tmp/t.yaml" --resume train.steps=3 run.seed=8 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "run.seed: 7 -> 8" <<<"$out" || fail "resume with a changed seed: $rc $out"
# A hyperparameter change is applied, logged and recorded.
"$rlvr" train -c "$tmp/t.yaml" --resume train.steps=3 optim.lr=2e-6 >"$tmp/lr.log" 2>&1 || { cat "$tmp/lr.log"; fail "resume lr"; }
grep -q "optim.lr changed from 1e-06 to 2e-06 (applies from step 3)" "$tmp/lr.log" || fail "lr change not logged"
tail -1 "$tmp/run/resumes.jsonl" | grep -q '"key":"optim.lr","old":"1e-06","new":"2e-06"' || fail "lr change not recorded"
grep -q "lr: 2e-06" "$tmp/run/config.yaml" || fail "config.yaml does not show the lr in effect"
# A breaking change is possible when asked for, and recorded as such.
"$rlvr" train -c "$tmp/t.yaml" --resume train.steps=4 optim.lr=2e-6 rollout.group_size=4 run.allow_resume_changes=true \
  >"$tmp/g.log" 2>&1 || { cat "$tmp/g.log"; fail "allowed resume change"; }
tail -1 "$tmp/run/resumes.jsonl" | grep -q '"key":"rollout.group_size","old":"2","new":"4","breaking":true' \
  || fail "allowed group size change not recorded: $(tail -1 "$tmp/run/resumes.jsonl")"
# Resuming an older checkpoint while later ones exist would prune the later ones at once: refused.
out=$("$rlvr" train -c "$tmp/t.yaml" --resume "$ck/step_2" train.steps=4 optim.lr=2e-6 rollout.group_size=4 \
      run.allow_resume_changes=true 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "later checkpoints (step_3, step_4)" <<<"$out" || fail "resume of an older checkpoint: $rc $out"
out=$("$rlvr" train -c "$tmp/t.yaml" --resume "$tmp/nothing" 2>&1); rc=$?
[ $rc -eq 2 ] || fail "resume of a missing checkpoint: exit $rc"

# --- hostile model files: sizes are checked against the safetensors before allocating -----------------------
cp -r "$ck/step_1" "$tmp/bad_model"
python3 - "$tmp/bad_model/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["hidden_size"] = 1000000000; json.dump(c, open(p, "w"))
PY
out=$("$rlvr" train -c "$tmp/t.yaml" run.output_dir="$tmp/bm" model.path="$tmp/bad_model" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "hidden_size = 1000000000 is implausibly large" <<<"$out" || fail "hidden_size 1e9: $rc $out"
grep -q "frame #\|terminate called" <<<"$out" && fail "stack trace: $out"
python3 - "$tmp/bad_model/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["hidden_size"] = 256; c["num_hidden_layers"] = 900; json.dump(c, open(p, "w"))
PY
out=$("$rlvr" train -c "$tmp/t.yaml" run.output_dir="$tmp/bm2" model.path="$tmp/bad_model" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "is stored as \[259, 128\] but config.json" <<<"$out" || fail "mismatched sizes: $rc $out"

# --- an unbounded input line is not echoed whole --------------------------------------------------------------
python3 -c "import sys; sys.stdout.write('{\"problem\": ' + 'x' * (20 << 20))" > "$tmp/huge.jsonl"
"$rlvr" train -c "$tmp/t.yaml" run.output_dir="$tmp/huge" data.train="$tmp/huge.jsonl" >"$tmp/huge.out" 2>&1; rc=$?
[ $rc -eq 1 ] || fail "20 MB line: exit $rc"
grep -q "huge.jsonl:1: invalid JSON" "$tmp/huge.out" || fail "20 MB line: no message naming the file"
[ "$(stat -c %s "$tmp/huge.out")" -lt 20000 ] || fail "20 MB line echoed to stderr ($(stat -c %s "$tmp/huge.out") bytes)"
[ "$(stat -c %s "$tmp/huge/train.log")" -lt 20000 ] || fail "20 MB line echoed to train.log"

# --- a directory as -c, duplicate keys: exit 2 ----------------------------------------------------------------
out=$("$rlvr" train -c "$tmp" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "is a directory" <<<"$out" || fail "directory as -c: $rc $out"
printf 'optim:\n  lr: 1e-5\n  lr: 1e-3\n' > "$tmp/dup.yaml"
out=$("$rlvr" config -c "$tmp/dup.yaml" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "duplicate key 'optim.lr'" <<<"$out" || fail "duplicate key: $rc $out"
out=$("$rlvr" config rollout.stop='[a, b' 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "override 'rollout.stop=\[a, b'" <<<"$out" || fail "YAML error in an override: $rc $out"

# --- rendezvous: a deadline of distributed.timeout_s whatever answers MASTER_PORT -----------------------------
port_file="$tmp/port"
python3 - "$port_file" <<'PY' &
# Accepts connections and reads, never answers: a server that is not a TCPStore.
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
conns = []
def drain(c):
    try:
        while c.recv(65536): pass
    except OSError: pass
s.settimeout(60)
try:
    while True:
        c, _ = s.accept(); conns.append(c); threading.Thread(target=drain, args=(c,), daemon=True).start()
except OSError: pass
PY
listener=$!
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")
out=$(RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port timeout 60 "$rlvr" train -c "$tmp/t.yaml" \
      run.output_dir="$tmp/rdv" distributed.timeout_s=3 2>&1); rc=$?
kill $listener 2>/dev/null; wait $listener 2>/dev/null
[ $rc -ne 124 ] || fail "rendezvous against a non-store server still running after 60 s (timeout_s 3)"
[ $rc -eq 1 ] && grep -q "within 3 s" <<<"$out" || fail "rendezvous against a non-store server: $rc $out"
# Nothing listening: one short error, no c10d traces.
free_port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
out=$(RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$free_port timeout 60 "$rlvr" train -c "$tmp/t.yaml" \
      run.output_dir="$tmp/rdv2" distributed.timeout_s=3 2>&1); rc=$?
[ $rc -eq 1 ] || fail "rendezvous with nothing listening: exit $rc: $out"
[ "$(wc -l <<<"$out")" -le 3 ] || fail "rendezvous with nothing listening: $(wc -l <<<"$out") lines: $out"

# --- a full disk while writing the optimizer state (tmpfs, where this test may mount one) ---------------------
mkdir -p "$tmp/small"
if mount -t tmpfs -o size=28m tmpfs "$tmp/small" 2>/dev/null; then
  mnt="$tmp/small"
  "$rlvr" train -c "$tmp/t.yaml" run.output_dir="$mnt/run" >"$tmp/d1.log" 2>&1 || { cat "$tmp/d1.log"; fail "tmpfs run"; }
  # Leave room for the second checkpoint's model and half its optimizer state (sized from step_1's files).
  model_b=$(stat -c %s "$mnt/run/checkpoints/step_1/model.safetensors")
  opt_b=$(stat -c %s "$mnt/run/checkpoints/step_1/trainer_state/optimizer.pt")
  avail=$(df --output=avail -B1 "$mnt" | tail -1)
  [ "$avail" -gt $(( model_b + opt_b / 2 + 65536 )) ] || fail "tmpfs too small for the full-disk check: $avail bytes free"
  head -c $(( avail - model_b - opt_b / 2 - 65536 )) /dev/zero > "$mnt/filler"
  step1=$(sum "$mnt/run/checkpoints/step_1/trainer_state/optimizer.pt" "$mnt/run/checkpoints/step_1/model.safetensors" \
              "$mnt/run/checkpoints/step_1/trainer_state/state.json")
  out=$("$rlvr" train -c "$tmp/t.yaml" run.output_dir="$mnt/run" --resume train.steps=2 2>&1); rc=$?
  [ $rc -eq 1 ] || { echo "$out"; fail "full disk: exit $rc, want 1 (134 = abort)"; }
  grep -q "optimizer.pt' failed: No space left on device" <<<"$out" || fail "full disk message: $out"
  grep -q "terminate called\|frame #" <<<"$out" && fail "full disk: a stack trace: $out"
  grep -q "No space left on device" "$mnt/run/train.log" || fail "full disk: nothing in train.log"
  ls -a "$mnt/run/checkpoints" | grep -q "tmp" && fail "full disk: a temporary is left: $(ls -a "$mnt/run/checkpoints")"
  [ "$(sum "$mnt/run/checkpoints/step_1/trainer_state/optimizer.pt" "$mnt/run/checkpoints/step_1/model.safetensors" \
           "$mnt/run/checkpoints/step_1/trainer_state/state.json")" = "$step1" ] || fail "full disk: step_1 changed"
  # Nearly full: the metrics line of step 2 does not fit; the run says so instead of dropping it.
  head -c $(( $(df --output=avail -B1 "$mnt" | tail -1) - 2048 )) /dev/zero > "$mnt/filler2" 2>/dev/null
  out=$("$rlvr" train -c "$tmp/t.yaml" run.output_dir="$mnt/run" --resume train.steps=2 train.save_every=0 2>&1); rc=$?
  [ $rc -eq 1 ] || { echo "$out"; fail "nearly full disk: exit $rc, want 1"; }
  grep -q "No space left on device" <<<"$out" || fail "nearly full disk message: $out"
  umount "$mnt"; mnt=""
else
  echo "SKIPPED: full-disk check (cannot mount a tmpfs here; needs root)"
fi
echo "robustness: ok"
