#!/usr/bin/env python3
"""Agreement of `rlvr verify --cases` with the 679 peer cases, by source.

usage: peer_agreement.py --tool PATH_TO(rlvr verify | verify_tool) [--cases FILE] [--show-disagreements]
Runs the tool once on all cases (with each case's config), maps verdicts to True (correct) / False (wrong or
ungradable) and compares with `expected`.
"""
import argparse, collections, json, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--tool", required=True, nargs="+")
ap.add_argument("--cases", default="/work/shared/data/verifier_peer_cases.jsonl")
ap.add_argument("--show-disagreements", action="store_true")
a = ap.parse_args()
cases = [json.loads(l) for l in open(a.cases, encoding="utf-8")]
inp = "".join(json.dumps({"gold": c["gold"], "pred": c["pred"], "config": c.get("config")}, ensure_ascii=False) + "\n" for c in cases)
p = subprocess.run(a.tool + ["--cases", "-"], input=inp.encode(), capture_output=True)
sys.stderr.write(p.stderr.decode())
out = [json.loads(l) for l in p.stdout.decode().splitlines()]
assert len(out) == len(cases), (len(out), len(cases))
by = collections.defaultdict(lambda: [0, 0])
mv = [0, 0]
dis = []
for c, o in zip(cases, out):
    src = c["source"].split("::")[0]
    got = o["verdict"] == "correct"
    ok = got == c["expected"]
    by[src][0] += ok
    by[src][1] += 1
    mv[0] += (c.get("math_verify_default") == c["expected"])
    mv[1] += 1
    if not ok:
        dis.append((cases.index(c), c, o))
tot = sum(v[0] for v in by.values()), sum(v[1] for v in by.values())
for s, (k, n) in sorted(by.items()):
    print(f"{s:70s} {k:4d}/{n:<4d} {100*k/n:6.1f}%")
print(f"{'TOTAL':70s} {tot[0]:4d}/{tot[1]:<4d} {100*tot[0]/tot[1]:6.1f}%   (Math-Verify 0.8.0 default: {100*mv[0]/mv[1]:.1f}%)")
if a.show_disagreements:
    for i, c, o in dis:
        print(f"--- #{i} {c['source']} expected={c['expected']} got={o['verdict']} mv={c.get('math_verify_default')}")
        print("  gold:", repr(c["gold"])[:200], "->", repr(o["gold_extracted"])[:100])
        print("  pred:", repr(c["pred"])[-200:], "->", repr(o["pred_extracted"])[:100])
