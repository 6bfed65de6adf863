#!/usr/bin/env python3
"""Reference fixtures for the model: tiny random HF checkpoints and what transformers computes on them.

Writes, per model NAME, under OUT/model/NAME/:
  hf/                  the checkpoint (save_pretrained, safetensors; fp32 unless the name says bf16)
  ref.safetensors      input_ids, attention_mask, position_ids [B, T] int64, logits [B, T, V] fp32
  ref.json             greedy continuations: [{"prompt": [...], "output": [...]}] (model.generate, do_sample=False)
Runs offline (no downloads); skips a model whose ref.json exists. fp32, attn_implementation="eager".
Usage: python tests/reference/make_model.py --out build/fixtures
"""
import argparse
import json
import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (AutoModelForCausalLM, GenerationConfig, LlamaConfig, Qwen2Config,  # noqa: E402
                          Qwen3Config)

COMMON = dict(max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0)

MODELS = {
    # GQA ratio 2 (4 heads, 2 kv heads), tied embeddings.
    "qwen2_tied": (Qwen2Config, dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                                     rope_theta=10000.0, rms_norm_eps=1e-6)),
    # GQA ratio 1 (MHA), untied lm_head, large rope_theta.
    "qwen2_untied": (Qwen2Config, dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False,
                                       rope_theta=1000000.0, rms_norm_eps=1e-6)),
    # GQA ratio 4 (4 heads, 1 kv head).
    "qwen2_gqa4": (Qwen2Config, dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True,
                                     rope_theta=10000.0, rms_norm_eps=1e-6)),
    # Llama 3 rope scaling; original context 32 puts the rotary frequencies in all three bands.
    "llama3": (LlamaConfig, dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                                 rms_norm_eps=1e-5,
                                 rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                                      low_freq_factor=1.0, high_freq_factor=4.0,
                                                      original_max_position_embeddings=32))),
    # Llama with attention_bias (q/k/v/o biases).
    "llama_bias": (LlamaConfig, dict(vocab_size=200, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
                                     attention_bias=True, rope_theta=10000.0, rms_norm_eps=1e-5)),
    # Qwen3: per-head q/k RMSNorm, head_dim (16) != hidden / heads (8).
    "qwen3": (Qwen3Config, dict(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True,
                                rope_theta=1000000.0, rms_norm_eps=1e-6)),
}
# Same weights as qwen2_untied, stored in shards (index file) / as a BF16 checkpoint.
VARIANTS = {"qwen2_untied_sharded": "qwen2_untied", "qwen2_tied_bf16": "qwen2_tied"}


def build(name):
    cls, kw = MODELS[name]
    cfg = cls(**kw, **COMMON)
    torch.manual_seed(4321 + sorted(MODELS).index(name))
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    # HF's std 0.02 init gives near-uniform logits, where greedy ties are decided by rounding noise.
    # Larger random weights make the argmax margins wide, and norms/biases non-trivial.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.2 * torch.randn_like(p))
            elif "embed_tokens" in pname:
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
    return model.eval()


def inputs(vocab):
    g = torch.Generator().manual_seed(7)
    B, T = 3, 12
    ids = torch.randint(3, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.int64)
    mask[1, :4] = 0   # left padded
    mask[2, 9:] = 0   # right padded
    ids = ids.masked_fill(mask == 0, 0)
    pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # transformers' generate convention
    return ids, mask, pos


def greedy(model, vocab):
    g = torch.Generator().manual_seed(11)
    out = []
    gen = GenerationConfig(do_sample=False, max_new_tokens=16, eos_token_id=None, pad_token_id=0,
                           bos_token_id=None)
    model.generation_config.eos_token_id = None  # run the full 16 tokens (after save_pretrained)
    for plen in (5, 9):
        prompt = torch.randint(3, vocab, (1, plen), generator=g)
        seq = model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=gen)
        assert seq.shape[1] == plen + 16, seq.shape
        # The smallest top-1 / top-2 gap along the path: a near tie would make the fixture fragile.
        with torch.no_grad():
            logits = model(seq).logits[0, plen - 1:-1]
        top2 = logits.topk(2, dim=-1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
        out.append({"prompt": prompt[0].tolist(), "output": seq[0, plen:].tolist(), "min_margin": margin})
    return out


def record(model, dst, vocab):
    ids, mask, pos = inputs(vocab)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float().contiguous()
    save_file({"input_ids": ids, "attention_mask": mask, "position_ids": pos, "logits": logits},
              os.path.join(dst, "ref.safetensors"))
    gen = greedy(model, vocab)
    with open(os.path.join(dst, "ref.json.tmp"), "w") as f:
        json.dump({"greedy": gen}, f)
    os.replace(os.path.join(dst, "ref.json.tmp"), os.path.join(dst, "ref.json"))
    return min(g["min_margin"] for g in gen)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    root = os.path.join(args.out, "model")
    torch.set_num_threads(1)
    for name in list(MODELS) + list(VARIANTS):
        dst = os.path.join(root, name)
        if os.path.exists(os.path.join(dst, "ref.json")):
            continue
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        base = VARIANTS.get(name, name)
        model = build(base)
        vocab = model.config.vocab_size
        if name.endswith("_sharded"):
            model.save_pretrained(os.path.join(dst, "hf"), max_shard_size="40KB")
        elif name.endswith("_bf16"):
            model.to(torch.bfloat16).save_pretrained(os.path.join(dst, "hf"))
            # The reference is what transformers computes in fp32 from the bf16-stored weights.
            model = AutoModelForCausalLM.from_pretrained(os.path.join(dst, "hf"), dtype=torch.float32,
                                                         attn_implementation="eager").eval()
        else:
            model.save_pretrained(os.path.join(dst, "hf"))
        margin = record(model, dst, vocab)
        print(f"make_model: {name} -> {dst} (min greedy margin {margin:.4f})", file=sys.stderr)


if __name__ == "__main__":
    main()
