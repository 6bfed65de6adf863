#!/usr/bin/env python3
"""`rlvr logprobs` against transformers: per-token log-probs of id rows of different lengths (batched with right
padding, so some rows are padded) on the reference fixtures, compared with log_softmax of the HF model's logits
for each row alone (fp32, eager). Exit 0 = every log-prob within 1e-4 (the fixtures' logit parity) and the
output shape is [null, lp_1, ..., lp_{n-1}] per row in input order.
Usage: check_logprobs_cli.py --rlvr build/rlvr --fixtures build/fixtures --work DIR"""
import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlvr", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.set_num_threads(1)
    failures = 0
    for name in ["qwen2_tied", "llama3", "qwen3"]:
        hf = os.path.join(args.fixtures, "model", name, "hf")
        if not os.path.exists(os.path.join(hf, "config.json")):
            print(f"missing fixture {hf}; run tests/reference/make_model.py --out {args.fixtures}")
            return 1
        model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32, attn_implementation="eager").eval()
        vocab = model.config.vocab_size
        g = torch.Generator().manual_seed(4)
        rows = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in (11, 3, 1, 7)]
        inp = os.path.join(args.work, f"{name}.jsonl")
        out = os.path.join(args.work, f"{name}.out.jsonl")
        with open(inp, "w") as f:
            for r in rows:
                f.write(json.dumps({"ids": r}) + "\n")
        subprocess.run([args.rlvr, "logprobs", "--model", hf, "--input", inp, "--output", out, "--batch-size", "3",
                        "--threads", "1"], check=True)
        got = [json.loads(line) for line in open(out)]
        if len(got) != len(rows):
            print(f"{name}: {len(got)} output lines for {len(rows)} rows")
            failures += 1
            continue
        worst = 0.0
        for r, o in zip(rows, got):
            lp = o["logprobs"]
            if o["ids"] != r or len(lp) != len(r) or lp[0] is not None:
                print(f"{name}: row {r[:3]}...: bad output {o}")
                failures += 1
                continue
            if len(r) < 2:
                continue
            with torch.no_grad():
                logits = model(torch.tensor([r])).logits[0].float()  # [n, V]
            ref = torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(r[1:]).unsqueeze(1)).squeeze(1)
            worst = max(worst, (torch.tensor(lp[1:]) - ref).abs().max().item())
        print(f"{name}: max |rlvr logprobs - transformers| = {worst:.2e}")
        if worst > 1e-4:
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
