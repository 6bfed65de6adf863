#!/usr/bin/env python3
"""Side-by-side tokenizer throughput: rlvr (bench_tokenizer) vs HF tokenizers (Rust) on the same corpus.

Usage: run.py --bench BUILD/bench/tokenizer/bench_tokenizer --tokenizer DIR --corpus F.jsonl [--threads N]
Prints one JSON line per (impl, mode) and a markdown table. HF is timed after a warm-up pass too (its BPE
cache is per Tokenizer object), single = encode() per text, batch = encode_batch() over all texts.
"""
import argparse
import json
import os
import subprocess
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--fields", nargs="*", default=["problem", "solution"])
    a = ap.parse_args()
    rows = []
    out = subprocess.run([a.bench, a.tokenizer, a.corpus, str(a.threads)] + a.fields, check=True,
                         capture_output=True, text=True).stdout
    rows += [json.loads(l) for l in out.splitlines() if l.strip()]

    if a.threads:
        os.environ["RAYON_NUM_THREADS"] = str(a.threads)
    from tokenizers import Tokenizer
    texts = []
    with open(a.corpus, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                texts += [j[k] for k in a.fields if isinstance(j.get(k), str)]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    t0 = time.perf_counter()
    path = a.tokenizer if a.tokenizer.endswith(".json") else os.path.join(a.tokenizer, "tokenizer.json")
    tk = Tokenizer.from_file(path)
    load_s = time.perf_counter() - t0

    def timed(mode, cold, fn):
        s = time.perf_counter()
        n = fn()
        d = time.perf_counter() - s
        rows.append({"impl": "hf-tokenizers", "mode": mode, "cold": cold, "texts": len(texts), "bytes": nbytes,
                     "tokens": n, "seconds": round(d, 4), "tokens_per_s": round(n / d), "load_s": round(load_s, 3)})

    single = lambda: sum(len(tk.encode(t, add_special_tokens=False).ids) for t in texts)
    timed("single", True, single)
    timed("single", False, single)
    timed("batch", False, lambda: sum(len(e.ids) for e in tk.encode_batch(texts, add_special_tokens=False)))
    for r in rows:
        print(json.dumps(r))
    print("\n| impl | mode | cache | tokens | seconds | tokens/s | load s |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['mode']} | {'cold' if r['cold'] else 'warm'} | {r['tokens']} | {r['seconds']:.3f} | "
              f"{r['tokens_per_s']:,} | {r['load_s']:.2f} |")


if __name__ == "__main__":
    main()
