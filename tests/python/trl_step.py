#!/usr/bin/env python3
"""One optimizer step of TRL's GRPOTrainer on a tiny random Qwen2 with a word-level digit tokenizer (both built
here, nothing downloaded) and rlvr_verify's accuracy reward: TRL must call it with the dataset's solution
column, log the mean of what it returned, and (rewards differing within the group) move the weights."""
import argparse, os, sys

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig, GRPOTrainer

import rlvr_verify
from rlvr_verify.trl import accuracy_reward

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
torch.manual_seed(a.seed)

# A word-level tokenizer of a few digits: the random model's one-token answers are right about a third of the
# time, so rewards differ within a group and the step has a non-zero advantage to learn from.
from tokenizers import Tokenizer, models, pre_tokenizers
vocab = {"<unk>": 0, "<eos>": 1, "4": 2, "5": 3, "7": 4, "+": 5, "=": 6}
t = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>")
cfg = Qwen2Config(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
model = Qwen2ForCausalLM(cfg)
before = {n: p.detach().clone() for n, p in model.named_parameters()}

calls = []


def rlvr_accuracy(prompts, completions, **kwargs):
    out = accuracy_reward(prompts=prompts, completions=completions, **kwargs)
    calls.append((len(completions), list(kwargs.get("solution", [])), out))
    return out


rlvr_accuracy.__name__ = "rlvr_accuracy"
ds = Dataset.from_dict({"prompt": ["2 + 2 =", "3 + 4 ="] * 4, "solution": ["4", "7"] * 4})
args = GRPOConfig(output_dir=a.out, per_device_train_batch_size=8, num_generations=8, max_completion_length=1,
                  max_steps=1, learning_rate=1e-2, logging_steps=1, report_to="none", save_strategy="no",
                  use_cpu=True, bf16=False, seed=a.seed, temperature=1.0)
trainer = GRPOTrainer(model=model, reward_funcs=[rlvr_accuracy], args=args, train_dataset=ds, processing_class=tok)
trainer.train()

if not calls:
    print("FAIL: TRL never called the reward function")
    sys.exit(1)
n, sols, out = calls[0]
assert len(out) == n and len(sols) == n and set(sols) <= {"4", "7"}, calls[0]
assert all(v in (0.0, 1.0, None) for v in out), out
logged = [h for h in trainer.state.log_history if "rewards/rlvr_accuracy/mean" in h]
if not logged:
    print("FAIL: no rewards/rlvr_accuracy/mean in the trainer's logs:", trainer.state.log_history)
    sys.exit(1)
graded = [v for v in out if v is not None]
mean = sum(graded) / len(graded)
if abs(float(logged[0]["rewards/rlvr_accuracy/mean"]) - mean) > 1e-6:
    print(f"FAIL: TRL logged {logged[0]['rewards/rlvr_accuracy/mean']}, our rewards average {mean}")
    sys.exit(1)
moved = sum(int(not torch.equal(before[k], p.detach())) for k, p in model.named_parameters())
print(f"trl_step: GRPOTrainer step {trainer.state.global_step} with rlvr_verify: {n} completions, rewards {out}, "
      f"TRL logged mean {logged[0]['rewards/rlvr_accuracy/mean']}; {moved} parameter tensors changed")
assert trainer.state.global_step == 1
if 0 < mean < 1:  # a mixed group: a real advantage, so the step must move the weights
    assert moved > 0, "a step with mixed rewards left the weights unchanged"
else:
    print("FAIL: every completion got the same reward with this seed; the step shows nothing (choose --seed)")
    sys.exit(1)
