#!/usr/bin/env python3
"""TRL's GRPOTrainer on the quickstart workload, timed per optimizer step and per phase (bench/step/run.sh).
The same checkpoint and tokenizer directory rlvr trains, the same JSONL prompts (`rlvr data generate`), the same
settings as bench/step/grpo.yaml: 64 prompts x 8 completions per step, max 32 new tokens, temperature 1, loss_type
"dapo" (token mean over the global batch), epsilon 0.2 / 0.28, beta 0, constant lr 5e-5, grad norm 1.0,
128 completions per micro-batch x 4 accumulation steps (one optimizer step per generation), fp32, no gradient
checkpointing (TRL's default is on), CPU threads as given. Reward: 1 when the last \\boxed{...} equals the answer.
Prints one JSON line per optimizer step: {step, step_s, generate_s, score_s, rollout_s, update_s, tokens}."""
import argparse, json, os, re, sys, time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--prompts", required=True, help="JSONL with prompt and answer")
ap.add_argument("--out", required=True)
ap.add_argument("--steps", type=int, default=6)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)

rows = [json.loads(line) for line in open(a.prompts) if line.strip()]
ds = Dataset.from_dict({"prompt": [r["prompt"] + "\n" for r in rows], "answer": [str(r["answer"]) for r in rows]})
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def accuracy(prompts, completions, answer, **_):
    out = []
    for c, gold in zip(completions, answer):
        m = BOXED.findall(c)
        out.append(1.0 if m and m[-1].strip() == gold.strip() else 0.0)
    return out


tok = AutoTokenizer.from_pretrained(a.model)
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
args = GRPOConfig(output_dir=a.out, per_device_train_batch_size=128, gradient_accumulation_steps=4, num_generations=8,
                  max_completion_length=32, temperature=1.0, top_p=1.0, top_k=0, learning_rate=5e-5,
                  lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=0.0,
                  epsilon=0.2, epsilon_high=0.28, loss_type="dapo", scale_rewards="group", max_steps=a.steps,
                  logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, bf16=False,
                  gradient_checkpointing=False, seed=a.seed, dataloader_num_workers=0, disable_dropout=True)
trainer = GRPOTrainer(model=model, reward_funcs=[accuracy], args=args, train_dataset=ds, processing_class=tok)

phase = {"generate_s": 0.0, "score_s": 0.0, "rollout_s": 0.0, "tokens": 0}


def timed(name, fn, count_tokens=False):
    def wrap(*args, **kwargs):
        t = time.perf_counter()
        r = fn(*args, **kwargs)
        phase[name] += time.perf_counter() - t
        if count_tokens:  # _generate_single_turn returns (completion_ids, logprobs)
            phase["tokens"] += sum(len(c) for c in r[0])
        return r
    return wrap


trainer._generate_single_turn = timed("generate_s", trainer._generate_single_turn, count_tokens=True)
trainer._calculate_rewards = timed("score_s", trainer._calculate_rewards)
trainer._generate_and_score_completions = timed("rollout_s", trainer._generate_and_score_completions)


class StepTimer(TrainerCallback):
    def on_step_begin(self, args, state, control, **kw):
        self.t = time.perf_counter()
        for k in phase:
            phase[k] = 0

    def on_step_end(self, args, state, control, **kw):
        s = time.perf_counter() - self.t
        print(json.dumps({"impl": "trl", "step": state.global_step, "step_s": s, **phase,
                          "update_s": s - phase["rollout_s"]}), flush=True)


trainer.add_callback(StepTimer())
trainer.train()
