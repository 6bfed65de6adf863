#!/usr/bin/env python3
"""transformers generate() on the bench checkpoint: the same prompts (token ids), G samples each
(num_return_sequences), exactly N new tokens (no EOS), pure sampling (temperature 1, no top-k/top-p), left padding.
Prints one JSON line with new tokens per second. Usage: hf_generate.py --model DIR --prompts F --samples G --new N
--threads T [--attn sdpa|eager]"""
import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def run(model, prompts, G, N):
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                             top_p=1.0, num_return_sequences=G, max_new_tokens=N, min_new_tokens=N,
                             eos_token_id=None, pad_token_id=0)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape == (len(prompts) * G, width + N), out.shape
    return dt, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation=args.attn).eval()
    prompts = json.load(open(args.prompts))
    run(model, prompts[:1], 2, 4)  # warm-up
    runs = [run(model, prompts, args.samples, args.new) for _ in range(args.reps)]
    best, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    toks = len(prompts) * args.samples * args.new
    print(json.dumps({"impl": f"transformers {__import__('transformers').__version__} ({args.attn})",
                      "new_tokens": toks, "seconds": round(best, 3), "tokens_per_s": round(toks / best, 1),
                      "cpu_seconds": round(cpu, 3), "tokens_per_cpu_s": round(toks / cpu, 1),
                      "threads": args.threads}))


if __name__ == "__main__":
    main()
