#!/usr/bin/env python3
"""Benchmark checkpoint and prompts for bench/rollout: a random Qwen2 (hidden 512, 8 layers, 8 heads, 2 kv heads,
inter 1408, vocab 32000, tied embeddings: ~39M parameters), fp32 safetensors, plus prompts.json (token ids).
Skips work when the outputs exist; offline. Usage: make_checkpoint.py --out DIR [--prompts 8]"""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, Qwen2Config  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--prompts", type=int, default=8)
    args = ap.parse_args()
    hf = os.path.join(args.out, "hf")
    if not os.path.exists(os.path.join(hf, "config.json")):
        cfg = Qwen2Config(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                          num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True,
                          max_position_embeddings=4096, rope_theta=1000000.0, rms_norm_eps=1e-6,
                          bos_token_id=1, eos_token_id=2, pad_token_id=0)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        model.save_pretrained(hf)
        n = sum(p.numel() for p in model.parameters())
        print(f"make_checkpoint: {hf} ({n / 1e6:.1f}M parameters)")
    path = os.path.join(args.out, f"prompts_{args.prompts}.json")
    if not os.path.exists(path):
        g = torch.Generator().manual_seed(1)
        lens = [24 + (96 * i) // max(1, args.prompts - 1) for i in range(args.prompts)]  # 24 .. 120 tokens
        prompts = [torch.randint(3, 32000, (n,), generator=g).tolist() for n in lens]
        with open(path, "w") as f:
            json.dump(prompts, f)


if __name__ == "__main__":
    main()
