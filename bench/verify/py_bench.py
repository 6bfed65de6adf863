#!/usr/bin/env python3
"""Checks per second from Python: rlvr_verify (one verify() per pair, and verify_batch on 1 and N threads)
against Math-Verify 0.8 (verify(parse("$" + gold + "$"), parse(pred)) per pair, as mv_bench.py), on the same
inputs in one process, one after the other. Prints one line per input file and the verdict agreement.

  PYTHONPATH=<rlvr_verify install> <venv with math-verify>/bin/python bench/verify/py_bench.py \\
      build/bench_verify_inputs/gsm8k.jsonl build/bench_verify_inputs/latex.jsonl [--threads 2] [--repeat 5]
(bench/verify/py_run.sh builds the inputs and the package and runs this.)"""
import argparse, json, os, time

import rlvr_verify as rv
from math_verify import parse, verify

ap = argparse.ArgumentParser()
ap.add_argument("files", nargs="+")
ap.add_argument("--threads", type=int, default=os.cpu_count())
ap.add_argument("--repeat", type=int, default=5, help="passes over the inputs for rlvr_verify (Math-Verify: 1)")
a = ap.parse_args()


def rate(fn, n_checks):
    t0 = time.perf_counter()
    out = fn()
    return out, n_checks / (time.perf_counter() - t0)


for path in a.files:
    rows = [json.loads(l) for l in open(path, encoding="utf-8")]
    golds = [r["gold"] for r in rows]
    preds = [r["pred"] for r in rows]
    n = len(rows)
    rv.verify_batch(golds[:50], preds[:50], threads=1)  # warm-up (GiNaC, allocator)
    single, r_single = rate(lambda: [rv.verify(g, p) for _ in range(a.repeat) for g, p in zip(golds, preds)][-n:],
                            n * a.repeat)
    _, r_batch1 = rate(lambda: [rv.verify_batch(golds, preds, threads=1) for _ in range(a.repeat)], n * a.repeat)
    _, r_batchn = rate(lambda: [rv.verify_batch(golds, preds, threads=a.threads) for _ in range(a.repeat)],
                       n * a.repeat)

    def mv():
        out = []
        for g, p in zip(golds, preds):
            try:
                out.append(bool(verify(parse("$" + g + "$"), parse(p))))
            except Exception:
                out.append(False)
        return out

    mv_out, r_mv = rate(mv, n)
    ours = [v.verdict == "correct" for v in single]
    agree = sum(x == y for x, y in zip(ours, mv_out)) / n
    name = os.path.splitext(os.path.basename(path))[0]
    print(f"{name:6s} n={n} | rlvr_verify verify() {r_single:9.0f}/s  verify_batch 1 thread {r_batch1:9.0f}/s  "
          f"{a.threads} threads {r_batchn:9.0f}/s | Math-Verify {r_mv:7.1f}/s | ratio verify() {r_single / r_mv:6.1f}x "
          f"batch {r_batchn / r_mv:6.1f}x | correct rlvr {sum(ours)} MV {sum(mv_out)} | agreement {100 * agree:.1f}%")
