#!/usr/bin/env python3
"""TRL's per-token log-prob computation, forward + backward, on CPU: the HF model with logits_to_keep = R + 1,
then trl.trainer.utils.selective_log_softmax on the completion tokens (what GRPOTrainer's
_get_per_token_logps does without its fused kernel), gradient checkpointing on (GRPOConfig's default).
Prints one JSON line: times, peak resident memory, and the log-prob sum (to check both sides score the same).
Usage: trl_logprobs.py --model DIR --ids FILE --prompt P --threads N"""
import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from trl.trainer.utils import selective_log_softmax  # noqa: E402


def reset_peak():
    # Linux: "5" resets VmHWM, so the peak below is this step's, not the checkpoint load's (mmap + copy).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--prompt", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="sdpa")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    with open(args.ids) as f:
        ids = torch.tensor([[int(x) for x in line.split()] for line in f if line.strip()])
    B, T = ids.shape
    R = T - args.prompt
    mask = torch.ones_like(ids)
    base = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=R + 1).logits[:, :-1, :]  # [B, R, V]
    logp = selective_log_softmax(logits, ids[:, -R:], temperature=args.temperature)  # [B, R]
    loss = logp.sum()
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    peak = peak_mb()
    print(json.dumps({"impl": "trl", "rows": B, "prompt": args.prompt, "response": R, "tokens": B * T,
                      "forward_s": t1 - t0, "backward_s": t2 - t1, "total_s": t2 - t0,
                      "rss_loaded_mb": base, "peak_rss_mb": peak, "logp_sum": loss.item()}))


if __name__ == "__main__":
    main()
