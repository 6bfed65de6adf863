#!/usr/bin/env python3
"""Builds the verifier benchmark inputs (JSON Lines {gold, pred}) from shared data.

gsm8k.jsonl: GSM8K test solutions turned into ~600-character completions ending in \\boxed{<int>}
             (calculator annotations removed; 80% correct, 20% off by one).
latex.jsonl: MATH-500 answers paired with equivalent rewritten forms inside a short completion
             (\\dfrac, spaces, \\left( \\right), a/b, decimals for simple fractions, reordered sums,
             "The final answer is $...$"), plus 10% wrong pairs.
usage: make_inputs.py --data /work/shared/data --out DIR
"""
import argparse, json, os, random, re

ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.environ.get("RLVR_SHARED_DATA", "/work/shared/data"))
ap.add_argument("--out", required=True)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
rng = random.Random(0)

gsm = [json.loads(l) for l in open(os.path.join(a.data, "gsm8k_test.jsonl"), encoding="utf-8")]
rows = []
for i, r in enumerate(gsm):
    sol = re.sub(r"<<[^>]*>>", "", r["solution"]).split("####")[0].strip().replace("\n", " ")
    text = sol
    j = i
    while len(text) < 560:
        j = (j + 7) % len(gsm)
        text += " " + re.sub(r"<<[^>]*>>", "", gsm[j]["solution"]).split("####")[0].strip().replace("\n", " ")
    text = text[:560]
    ans = int(r["answer"])
    pred_ans = ans if rng.random() < 0.8 else ans + 1
    rows.append({"gold": r["answer"], "pred": text + f" So the answer is \\boxed{{{pred_ans}}}."})
with open(os.path.join(a.out, "gsm8k.jsonl"), "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")

def rewrite(ans):
    s = ans
    m = re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", s)
    if m and rng.random() < 0.5:
        p, q = int(m.group(1)), int(m.group(2))
        if q in (2, 4, 5, 8, 10, 20, 25, 40, 50):
            return str(p / q)
        return f"{p}/{q}"
    m = re.fullmatch(r"(-?\d+)", s)
    if m and rng.random() < 0.3:
        return f"{s}.0"
    s = s.replace("\\frac", "\\dfrac")
    s = re.sub(r"^\((.*)\)$", r"\\left(\1\\right)", s)
    m = re.fullmatch(r"([^+\-]+)\+([^+\-]+)", s)
    if m and "{" not in s and rng.random() < 0.5:
        s = f"{m.group(2)}+{m.group(1)}"
    s = s.replace(",", ", ")
    return s

math = [json.loads(l) for l in open(os.path.join(a.data, "math500_test.jsonl"), encoding="utf-8")]
rows = []
for r in math:
    ans = r["answer"].strip()
    pred = rewrite(ans)
    if rng.random() < 0.1:
        pred = pred + "+1"
    style = rng.random()
    if style < 0.5:
        comp = f"Combining the steps above we obtain the result. Therefore the answer is $\\boxed{{{pred}}}$."
    else:
        comp = f"We simplify and check each case carefully. The final answer is ${pred}$."
    rows.append({"gold": ans, "pred": comp})
with open(os.path.join(a.out, "latex.jsonl"), "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"wrote {a.out}/gsm8k.jsonl and {a.out}/latex.jsonl")
