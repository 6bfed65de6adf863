#!/usr/bin/env python3
"""Benchmark checkpoint for bench/model: a random ~30M-parameter Qwen2 (hidden 512, 8 layers, 8 heads, 2 kv heads,
inter 1408, vocab 32000, tied embeddings), fp32 safetensors. Skips work when it exists; offline.
Usage: make_bench_model.py --out DIR"""
import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, Qwen2Config  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if os.path.exists(os.path.join(args.out, "config.json")):
        return
    cfg = Qwen2Config(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                      num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True,
                      max_position_embeddings=4096, rope_theta=1000000.0, rms_norm_eps=1e-6,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.save_pretrained(args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"make_bench_model: {args.out} ({n / 1e6:.1f}M parameters)")


if __name__ == "__main__":
    main()
