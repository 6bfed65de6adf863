#!/usr/bin/env python3
"""Math-Verify timing on the same inputs: verify(parse("$" + gold + "$"), parse(pred)) per pair, single thread.
Prints one JSON line {"file", "checks", "seconds", "checks_per_sec", "correct"} and writes verdicts to
--verdicts (one true/false per line) for agreement."""
import argparse, json, time
from math_verify import parse, verify

ap = argparse.ArgumentParser()
ap.add_argument("file")
ap.add_argument("--verdicts")
ap.add_argument("--limit", type=int, default=0)
a = ap.parse_args()
rows = [json.loads(l) for l in open(a.file, encoding="utf-8")]
if a.limit:
    rows = rows[: a.limit]
out = []
t0 = time.perf_counter()
for r in rows:
    try:
        # gold is bare LaTeX (MATH answers): wrap it in $..$ as Math-Verify users do
        out.append(bool(verify(parse("$" + r["gold"] + "$"), parse(r["pred"]))))
    except Exception:
        out.append(False)
dt = time.perf_counter() - t0
print(json.dumps({"file": a.file, "checks": len(rows), "seconds": dt, "checks_per_sec": len(rows) / dt, "correct": sum(out)}))
if a.verdicts:
    open(a.verdicts, "w").write("\n".join("true" if v else "false" for v in out) + "\n")
