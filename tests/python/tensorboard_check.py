#!/usr/bin/env python3
"""Compares a run's TensorBoard event files, read by TensorBoard's EventAccumulator, with its metrics.jsonl:
the same (tag, step) pairs, each once, values equal to float32 rounding, the resolved config as text.

--save-state F: record how many scalar records each event file holds (raw, before any purge);
--first-state F: after a resume, require that the first launch's file lost its orphaned steps (the count of
raw step-3 records went from 1 to 0 there) while the reader still shows step 3 once, from the new file.
"""
import argparse, glob, json, math, os, sys

from tensorboard.backend.event_processing import event_accumulator as ea_mod
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

ap = argparse.ArgumentParser()
ap.add_argument("run")
ap.add_argument("--expect-steps", required=True)
ap.add_argument("--save-state")
ap.add_argument("--first-state")
a = ap.parse_args()

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

tb_dir = os.path.join(a.run, "tensorboard")
files = sorted(glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")))
if not files:
    fail(f"no event file in {tb_dir}")

# Raw records per file, through TensorBoard's loader (it checks both CRCs of every record).
raw = {}
for f in files:
    steps = {}
    for ev in EventFileLoader(f).Load():
        if ev.HasField("summary"):
            for v in ev.summary.value:
                # the loader migrates simple_value records into scalar-plugin tensors; count either form
                if v.HasField("simple_value") or v.metadata.plugin_data.plugin_name == "scalars":
                    steps.setdefault(ev.step, 0)
                    steps[ev.step] += 1
    raw[os.path.basename(f)] = {str(k): n for k, n in steps.items()}

acc = ea_mod.EventAccumulator(tb_dir, size_guidance={ea_mod.SCALARS: 0, ea_mod.TENSORS: 0})
acc.Reload()

want = {}
for line in open(os.path.join(a.run, "metrics.jsonl")):
    j = json.loads(line)
    step = j.pop("step")
    for k, v in j.items():
        if v is not None:
            want.setdefault(k, []).append((step, v))

expect_steps = [int(s) for s in a.expect_steps.split(",")]
got_steps = sorted({s for pairs in want.values() for s, _ in pairs})
if got_steps != expect_steps:
    fail(f"metrics.jsonl steps {got_steps}, expected {expect_steps}")

tags = set(acc.Tags()["scalars"])
if tags != set(want):
    fail(f"scalar tags differ: only in metrics.jsonl {sorted(set(want) - tags)}, only in TensorBoard {sorted(tags - set(want))}")
checked = 0
for tag, pairs in want.items():
    events = acc.Scalars(tag)
    steps = [e.step for e in events]
    if steps != [s for s, _ in pairs]:
        fail(f"{tag}: TensorBoard steps {steps}, metrics.jsonl steps {[s for s, _ in pairs]}")
    for e, (s, v) in zip(events, pairs):
        if not math.isclose(e.value, v, rel_tol=1e-6, abs_tol=1e-30):
            fail(f"{tag} step {s}: TensorBoard {e.value}, metrics.jsonl {v}")
        checked += 1

text_tags = acc.Tags()["tensors"]
if "config" not in text_tags:
    fail(f"no config text (tensor tags {text_tags})")
config_text = acc.Tensors("config")[-1].tensor_proto.string_val[0].decode()
if "builtin:tiny" not in config_text or "tensorboard: true" not in config_text:
    fail("config text does not hold the resolved config:\n" + config_text[:400])

print(f"tensorboard_check: {len(files)} event file(s), {len(tags)} tags, {checked} (tag, step) values match metrics.jsonl")

if a.save_state:
    json.dump(raw, open(a.save_state, "w"))
if a.first_state:
    before = json.load(open(a.first_state))
    if len(before) != 1 or len(files) != 2:
        fail(f"expected one event file before the resume and two after, got {len(before)} and {len(files)}")
    first = next(iter(before))
    if before[first].get("3", 0) == 0:
        fail("the first launch never wrote step 3: the resume test would prove nothing")
    if raw[first].get("3", 0) != 0 or raw[first].get("4", 0) != 0:
        fail(f"the first launch's file still holds steps after the checkpoint: {raw[first]}")
    second = [f for f in raw if f != first][0]
    if raw[second].get("3", 0) == 0 or raw[second].get("2", 0) != 0:
        fail(f"the resumed launch's file should hold steps 3 and 4 only: {raw[second]}")
    print(f"tensorboard_check: resume ok; step-3 records in the first file {before[first]['3']} -> 0, "
          f"in the resumed file {raw[second]['3']}")
