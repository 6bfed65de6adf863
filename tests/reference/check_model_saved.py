#!/usr/bin/env python3
"""Checks that transformers loads checkpoints written by our C++ save_pretrained and computes our logits.

Runs the hidden Catch2 test `[.hf_export]` of test_model (which saves random models and the logits the C++
forward gives on a padded batch), then loads each checkpoint with AutoModelForCausalLM (fp32, eager) and
compares logits on the real tokens. Exit 0 = all match to 1e-4.
Usage: check_model_saved.py --test-binary build/tests/model/test_model --work build/model_saved
"""
import argparse
import os
import shutil
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--test-binary", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    env = dict(os.environ, RLVR_MODEL_EXPORT_DIR=os.path.abspath(args.work))
    subprocess.run([args.test_binary, "[.hf_export]"], check=True, env=env)
    torch.set_num_threads(1)
    failures = 0
    names = sorted(os.listdir(args.work))
    assert names, "the export test wrote nothing"
    for name in names:
        d = os.path.join(args.work, name)
        ref = load_file(os.path.join(d, "logits.safetensors"))
        model = AutoModelForCausalLM.from_pretrained(os.path.join(d, "ckpt"), dtype=torch.float32,
                                                     attn_implementation="eager").eval()
        with torch.no_grad():
            logits = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"],
                           position_ids=ref["position_ids"]).logits
        real = ref["attention_mask"].bool().unsqueeze(-1)
        diff = float(((logits - ref["logits"]).abs() * real).max())
        ok = diff < 1e-4
        failures += not ok
        print(f"{name}: max |transformers - rlvr| = {diff:.2e} {'ok' if ok else 'MISMATCH'} "
              f"(logit scale {float(ref['logits'].abs().max()):.2f})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
