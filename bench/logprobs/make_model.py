#!/usr/bin/env python3
"""Benchmark checkpoint for bench/logprobs: a random Qwen2.5-0.5B-shaped Qwen2 (24 layers, hidden 896, 14 heads,
2 kv heads, intermediate 4864, vocab 151936, tied embeddings; ~494M parameters, fp32), and the token ids of each
micro-batch (B rows of P prompt + R response tokens, seeded) that both sides score. Skips work that exists; offline.
Usage: make_model.py --out DIR --batch 4 --prompt 256 --responses 768 1536 3072"""
import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, Qwen2Config  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--responses", type=int, nargs="+", default=[768, 1536, 3072])
    args = ap.parse_args()
    hf = os.path.join(args.out, "hf")
    if not os.path.exists(os.path.join(hf, "config.json")):
        cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                          num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True,
                          max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                          bos_token_id=151643, eos_token_id=151645)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
        model.save_pretrained(hf)
        print(f"make_model: {hf} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
    for r in args.responses:
        path = os.path.join(args.out, f"ids_{args.batch}x{args.prompt}+{r}.txt")
        if os.path.exists(path):
            continue
        g = torch.Generator().manual_seed(r)
        ids = torch.randint(0, 151936, (args.batch, args.prompt + r), generator=g)
        with open(path + ".tmp", "w") as f:
            for row in ids.tolist():
                f.write(" ".join(map(str, row)) + "\n")
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
