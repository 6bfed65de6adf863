#!/usr/bin/env python3
"""transformers side of bench/model: forward (no grad) or forward+backward tokens/s on the same inputs as
bench_model (B rows of T tokens, the last row right-padded by a quarter), fp32, the given CPU threads.
Prints one JSON line. Usage: hf_forward.py --model DIR --batch B --seq T --threads N --reps R --mode forward|train"""
import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mode", default="forward", choices=["forward", "train"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)  # default attention (sdpa)
    B, T = args.batch, args.seq
    ids = (torch.arange(B * T, dtype=torch.int64).view(B, T) * 7919 + 13) % model.config.vocab_size
    mask = torch.ones(B, T, dtype=torch.int64)
    mask[-1, T - T // 4:] = 0
    tokens = int(mask.sum())

    def step():
        if args.mode == "forward":
            model.eval()
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask).logits
        else:
            model.train()
            logits = model(input_ids=ids, attention_mask=mask).logits
            lp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
            (lp * mask[:, 1:]).sum().backward()
            model.zero_grad(set_to_none=True)

    step()  # warm-up
    best = float("inf")
    for _ in range(args.reps):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"impl": "transformers", "mode": args.mode, "tokens": tokens, "seconds": best,
                      "tokens_per_s": tokens / best, "threads": args.threads}))


if __name__ == "__main__":
    main()
