// The run config: one plain struct per YAML section, each with defaults and a unit/meaning comment per
// field (the same text is emitted as a YAML comment by `rlvr config`). Validation lives in validate().
// Batch knobs say whether they count prompts or completions. No LibTorch here.
#pragma once
#include <string>
#include <vector>

#include "common/config_io.h"
#include "rewards/reward_spec.h"

namespace rlvr {

struct RunConfig {
  std::string name = "default";          // run name; used in the default output_dir
  std::string output_dir = "";           // run directory; "" = runs/<name>
  int64_t seed = 1234;                   // seeds data order, sampling and init
  std::string device = "auto";           // auto | cpu | cuda
  int32_t threads = 0;                   // intra-op CPU threads; 0 = torch default
  bool overwrite = false;                // an existing run directory is deleted and started afresh (CLI --overwrite)
  bool allow_resume_changes = false;     // --resume may change settings that define the run (model, seed, data, G)
  template <class V> void visit(V& v) {
    v.field("name", name, "run name; the default output_dir is runs/<name>");
    v.field("output_dir", output_dir, "run directory (config, logs, metrics, checkpoints); empty = runs/<name>");
    v.field("seed", seed, "seeds data order, sampling and initialisation", at_least(0));
    v.field("device", device, "auto | cpu | cuda");
    v.field("threads", threads, "CPU intra-op threads; 0 = LibTorch default", at_least(0, 1024));
    v.field("overwrite", overwrite,
            "an existing run directory (with a config.yaml) is deleted and started afresh; false = refused");
    v.field("allow_resume_changes", allow_resume_changes,
            "--resume may change settings that define the run (model, seed, data, group_size); false = refused");
  }
};

struct ModelConfig {
  std::string path = "builtin:tiny";     // HF checkpoint directory, or builtin:<name> (a small model of ours)
  std::string tokenizer = "";            // tokenizer directory; "" = path
  std::string dtype = "auto";            // working weights: auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
  bool gradient_checkpointing = false;   // recompute activations in backward to save memory
  std::string chat_template = "none";    // none | chatml | llama3 (applied when data.template = chat)
  std::string ref_path = "";             // frozen reference for KL; "" = path (loaded only if kl_coef != 0)
  template <class V> void visit(V& v) {
    v.field("path", path, "HF checkpoint directory, or builtin:tiny (a small model of ours, no download)");
    v.field("tokenizer", tokenizer, "tokenizer directory; empty = model.path");
    v.field("dtype", dtype, "compute dtype of the working weights: auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16; the optimizer always keeps fp32 masters, moments and grads");
    v.field("gradient_checkpointing", gradient_checkpointing,
            "recompute each decoder layer in backward (its MLP over chunks of tokens) instead of keeping it");
    v.field("chat_template", chat_template, "none | chatml | qwen2.5 | qwen3 | qwen3-nothink | llama3 | a raw string with {prompt}");
    v.field("ref_path", ref_path, "reference model for KL; empty = model.path; loaded only when kl_coef != 0");
  }
};

struct DataConfig {
  std::string train = "builtin:arithmetic";  // JSONL file, or builtin:<task> (arithmetic | countdown)
  std::string eval = "";                 // JSONL file or builtin:<task>; "" = the builtin task's held-out split
  std::string prompt_key = "";           // "" = first of problem, question, prompt
  std::string answer_key = "";           // "" = first of answer, solution (GSM8K '####' parsed)
  std::string templ = "raw";             // r1_zero | qwen_math | chat | raw
  std::string template_string = "{prompt}";  // used when template = raw; must contain {prompt}
  int32_t max_prompt_tokens = 512;       // longer prompts are dropped (counted and logged)
  bool shuffle = true;                   // reshuffle every epoch (deterministic in run.seed and epoch)
  int32_t task_difficulty = 1;           // builtin tasks: difficulty level (1 = easiest)
  int32_t task_train_size = 20000;       // builtin tasks: training problems generated
  int32_t task_eval_size = 200;          // builtin tasks: held-out problems (disjoint seed stream)
  std::string selection = "all";         // prompt selection before generation: all | skip_zero_variance | pass_rate_band
  double selection_explore = 0.25;       // skip_zero_variance: kept with prob explore^streak; pass_rate_band: out-of-band kept with prob explore
  double selection_band_lo = 0.1;        // pass_rate_band: preferred pass rates [lo, hi] (recent groups' accuracy)
  double selection_band_hi = 0.9;
  int32_t selection_window = 4;          // groups per prompt remembered for the pass rate
  int32_t selection_max_scan = 4;        // candidates examined per generation round at most, x prompts_per_step
  template <class V> void visit(V& v) {
    v.field("train", train, "JSONL file, or builtin:arithmetic | builtin:countdown");
    v.field("eval", eval, "JSONL file or builtin task; empty = held-out split of the builtin task");
    v.field("prompt_key", prompt_key, "field holding the problem; empty = first of problem, question, prompt");
    v.field("answer_key", answer_key, "field holding the reference; empty = first of answer, solution");
    v.field("template", templ, "r1_zero | qwen_math | chat | raw");
    v.field("template_string", template_string, "raw template; must contain {prompt}");
    v.field("max_prompt_tokens", max_prompt_tokens, "longer prompts are dropped and counted", at_least(1, 1 << 20));
    v.field("shuffle", shuffle, "reshuffle each epoch (deterministic in run.seed)");
    v.field("task_difficulty", task_difficulty, "builtin tasks: difficulty level, 1 = easiest", at_least(1));
    v.field("task_train_size", task_train_size, "builtin tasks: number of training problems", at_least(1, 1e7));
    v.field("task_eval_size", task_eval_size, "builtin tasks: number of held-out problems", at_least(0, 1e6));
    v.field("selection", selection,
            "prompt selection before generation (GRPO): all | skip_zero_variance | pass_rate_band; uses each "
            "prompt's history of groups");
    v.field("selection_explore", selection_explore,
            "skip_zero_variance: a prompt whose last z groups were all correct or all wrong is kept with probability "
            "explore^z; pass_rate_band: a prompt outside the band is kept with probability explore (0.25 generated 1.54x "
            "fewer tokens than dynamic sampling alone at equal accuracy, 0.5 1.35x)",
            at_least(0, 1));
    v.field("selection_band_lo", selection_band_lo, "pass_rate_band: lowest preferred pass rate", at_least(0, 1));
    v.field("selection_band_hi", selection_band_hi, "pass_rate_band: highest preferred pass rate", at_least(0, 1));
    v.field("selection_window", selection_window, "groups per prompt remembered for its pass rate", at_least(1, 1024));
    v.field("selection_max_scan", selection_max_scan,
            "candidates examined per generation round at most, in units of train.prompts_per_step; a batch still "
            "short after that is filled with skipped candidates", at_least(1, 1000));
  }
};

struct RolloutConfig {
  int32_t group_size = 8;                // G: completions per prompt
  int32_t max_new_tokens = 256;          // per completion; stops earlier at EOS or a stop string
  double temperature = 1.0;              // 0 = greedy
  double top_p = 1.0;                    // 1.0 = no nucleus truncation
  int32_t top_k = 0;                     // 0 = no top-k truncation
  double min_p = 0.0;                    // 0 = off
  std::vector<std::string> stop = {};    // stop strings (in addition to EOS ids)
  int32_t max_batch_seqs = 64;           // completions decoded concurrently (KV-cache slots)
  int64_t max_cached_tokens = 0;         // KV-cache token budget; 0 = max_batch_seqs * (prompt + new)
  int32_t confidence_top_k = 20;         // DeepConf token confidence over the k most likely tokens; 0 = off
  int32_t score_threads = 0;             // threads grading the completions; 0 = every core
  template <class V> void visit(V& v) {
    v.field("group_size", group_size, "G, completions per prompt (TRL num_generations, verl rollout.n)",
            at_least(2, 4096));
    v.field("max_new_tokens", max_new_tokens, "tokens per completion at most", at_least(1, 1 << 20));
    v.field("temperature", temperature, "sampling temperature; 0 = greedy", at_least(0, 100));
    v.field("top_p", top_p, "nucleus sampling; 1.0 = off", above(0, 1));
    v.field("top_k", top_k, "top-k sampling; 0 = off", at_least(0));
    v.field("min_p", min_p, "min-p sampling; 0 = off", half_open(0, 1));
    v.field("stop", stop, "stop strings, besides the tokenizer's EOS ids");
    v.field("max_batch_seqs", max_batch_seqs, "completions decoded at once (KV-cache slots)", at_least(1, 1 << 16));
    v.field("max_cached_tokens", max_cached_tokens, "KV-cache token budget; 0 = slots x (prompt + new tokens)",
            at_least(0, 1e12));
    v.field("confidence_top_k", confidence_top_k,
            "k of the per-token confidence (DeepConf) behind the confidence/correct and confidence/wrong metrics; 0 = off",
            at_least(0, 1024));
    v.field("score_threads", score_threads, "threads grading the completions with the rubric; 0 = every core",
            at_least(0, 1024));
  }
};

struct AlgorithmConfig {
  std::string advantage = "grpo";        // grpo | dr_grpo | rloo | reinforce_pp
  std::string scale_rewards = "group";   // group | batch | none (divide by which std)
  double adv_eps = 1e-6;                 // added to the std (verl 1e-6; TRL 1e-4)
  double clip_low = 0.2;                 // epsilon: ratio clipped below at 1 - clip_low
  double clip_high = 0.2;                // clip-higher (DAPO 0.28): ratio clipped above at 1 + clip_high
  double clip_ratio_c = 0.0;             // dual clip for negative advantages (verl 3.0); 0 = off
  std::string loss_agg = "token-mean";   // token-mean | seq-mean-token-mean | seq-mean-token-sum-norm
  int32_t loss_norm_len = 0;             // seq-mean-token-sum-norm constant; 0 = rollout.max_new_tokens
  double kl_coef = 0.0;                  // beta; 0 = no reference model
  std::string kl_estimator = "k3";       // k1 | k2 | k3 (k3 = verl low_var_kl, clamped)
  bool kl_in_reward = false;             // subtract beta*KL from the reward instead of adding it to the loss
  double entropy_coef = 0.0;             // entropy bonus; != 0 also backpropagates through the entropy
  int32_t ppo_epochs = 1;                // mu: passes over each batch (TRL num_iterations)
  bool dynamic_sampling = false;         // DAPO: drop groups with accuracy all 0 or all 1, refill
  int32_t max_gen_batches = 4;           // dynamic sampling: generation rounds per step at most
  bool mask_truncated = false;           // overlong filtering: no loss on truncated completions
  template <class V> void visit(V& v) {
    v.field("advantage", advantage, "grpo | dr_grpo | rloo | reinforce_pp");
    v.field("scale_rewards", scale_rewards, "group | batch | none: which std divides the advantage");
    v.field("adv_eps", adv_eps, "epsilon added to the std", at_least(0, 1));
    v.field("clip_low", clip_low, "ratio clipped below at 1 - clip_low (TRL epsilon)", half_open(0, 1));
    v.field("clip_high", clip_high, "ratio clipped above at 1 + clip_high (DAPO clip-higher 0.28)", at_least(0, 100));
    v.field("clip_ratio_c", clip_ratio_c, "dual clip constant for negative advantages (verl 3.0); 0 = off",
            above(1, 1e6).or_zero());
    v.field("loss_agg", loss_agg, "token-mean | seq-mean-token-mean | seq-mean-token-sum-norm");
    v.field("loss_norm_len", loss_norm_len, "constant of seq-mean-token-sum-norm; 0 = rollout.max_new_tokens",
            at_least(0, 1 << 20));
    v.field("kl_coef", kl_coef, "KL coefficient beta; 0 = no reference model", at_least(0, 1e6));
    v.field("kl_estimator", kl_estimator, "k1 | k2 | k3 (low_var_kl, clamped); verl's kl | mse | low_var_kl are accepted");
    v.field("kl_in_reward", kl_in_reward, "apply KL as a reward penalty instead of a loss term");
    v.field("entropy_coef", entropy_coef,
            "entropy bonus coefficient; != 0 adds the entropy's gradient pass (the entropy_mean metric is always "
            "computed, without gradient)", at_least(-1e6, 1e6));
    v.field("ppo_epochs", ppo_epochs, "mu: optimisation passes per batch (TRL num_iterations)", at_least(1, 1000));
    v.field("dynamic_sampling", dynamic_sampling, "DAPO dynamic sampling on the accuracy reward");
    v.field("max_gen_batches", max_gen_batches, "dynamic sampling: generation rounds per step at most",
            at_least(1, 1000));
    v.field("mask_truncated", mask_truncated, "overlong filtering: truncated completions get no loss");
  }
};

struct OptimConfig {
  double lr = 1e-6;                      // peak learning rate
  double weight_decay = 0.0;             // AdamW decoupled decay (never on norms and biases)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "constant";     // constant | linear | cosine (after warmup)
  int32_t warmup_steps = 0;              // linear warmup from 0
  double min_lr_ratio = 0.0;             // floor of linear/cosine decay, as a fraction of lr
  double max_grad_norm = 1.0;            // global-norm clipping; 0 = off
  template <class V> void visit(V& v) {
    v.field("lr", lr, "peak learning rate", above(0, 1));
    v.field("weight_decay", weight_decay, "AdamW weight decay; never applied to norms and biases", at_least(0, 10));
    v.field("beta1", beta1, "AdamW beta1", half_open(0, 1));
    v.field("beta2", beta2, "AdamW beta2", half_open(0, 1));
    v.field("eps", eps, "AdamW epsilon", above(0, 1));
    v.field("schedule", schedule, "constant | linear | cosine, after warmup");
    v.field("warmup_steps", warmup_steps, "optimizer steps of linear warmup", at_least(0));
    v.field("min_lr_ratio", min_lr_ratio, "floor of the decay as a fraction of lr", at_least(0, 1));
    v.field("max_grad_norm", max_grad_norm, "clip gradients to this global norm; 0 = off", at_least(0));
  }
};

struct TrainConfig {
  int32_t steps = 50;                    // optimizer steps (x ppo_epochs x mini-batches)
  int32_t prompts_per_step = 8;          // PROMPTS per step over all ranks; completions = this x group_size
  int32_t mini_batches = 1;              // optimizer steps per batch per ppo epoch
  int32_t micro_batch_size = 16;         // COMPLETIONS per forward/backward (does not change the update)
  int64_t max_tokens_per_micro_batch = 0;  // padded tokens per GRPO forward/backward, rows sorted by length; 0 = off
  bool share_prompt = false;             // GRPO: each micro-batch runs a prompt once, its completions behind it
  bool skip_zero_advantage = true;       // GRPO: completions with advantage 0 skip the update's forward/backward
  int32_t save_every = 0;                // checkpoint every N steps; 0 = only at the end
  int32_t keep_last = 2;                 // checkpoints kept (older ones deleted)
  int32_t eval_every = 0;                // held-out eval every N steps; 0 = off
  int32_t eval_samples = 1;              // k samples per eval prompt
  double stop_at_accuracy = 0;           // stop (with a checkpoint) once a periodic eval's mean@k reaches it; 0 = off
  int32_t max_nonfinite_steps = 3;       // stop after this many consecutive NaN/inf steps
  template <class V> void visit(V& v) {
    v.field("steps", steps, "training steps (one rollout batch each)", at_least(0, 1e8));
    v.field("prompts_per_step", prompts_per_step, "PROMPTS per step over all ranks (completions = x group_size)",
            at_least(1, 1 << 20));
    v.field("mini_batches", mini_batches, "optimizer steps per rollout batch per epoch (verl ppo_mini_batch)",
            at_least(1, 1 << 20));
    v.field("micro_batch_size", micro_batch_size, "COMPLETIONS per forward/backward; does not change the update",
            at_least(1, 1 << 20));
    v.field("max_tokens_per_micro_batch", max_tokens_per_micro_batch,
            "GRPO: micro-batches by token budget instead of micro_batch_size (verl ppo_max_token_len_per_gpu): "
            "completions sorted by length, packed while rows x longest (prompt + response) fits; a longer one goes "
            "alone; does not change the update; 0 = off",
            at_least(0, int64_t{1} << 40));
    v.field("share_prompt", share_prompt,
            "GRPO: in each update and reference forward, a prompt's completions are packed behind ONE copy of it "
            "(a block mask lets each see the prompt and itself only): the same log-probs and update, fewer tokens "
            "(Prefix Grouper); micro-batches by train.micro_batch_size in group order");
    v.field("skip_zero_advantage", skip_zero_advantage,
            "GRPO: when the loss has no KL or entropy term (algorithm.kl_coef 0 or kl_in_reward, entropy_coef 0), "
            "completions whose advantage is exactly 0 (groups whose rewards are all equal) are left out of the "
            "update's forward and backward; they still count in the loss normaliser, so the update is the same; "
            "loss/ratio_*, loss/approx_kl_old and loss/entropy_mean are then over the completions that ran; "
            "update/skipped_frac is the share left out");
    v.field("save_every", save_every, "checkpoint every N steps; 0 = at the end only", at_least(0));
    v.field("keep_last", keep_last, "number of checkpoints kept", at_least(1));
    v.field("eval_every", eval_every, "held-out evaluation every N steps; 0 = off", at_least(0));
    v.field("eval_samples", eval_samples, "samples per prompt in evaluation (mean@k, pass@k, maj@k)",
            at_least(1, 1 << 16));
    v.field("stop_at_accuracy", stop_at_accuracy,
            "stop training, writing a checkpoint, at the first periodic held-out eval (train.eval_every) whose "
            "mean@k (greedy mean@1 in SFT) is at least this; 0 = off",
            at_least(0, 1));
    v.field("max_nonfinite_steps", max_nonfinite_steps, "stop after this many NaN/inf steps in a row", at_least(1));
  }
};

struct DistributedConfig {
  std::string backend = "auto";          // auto (nccl on CUDA, gloo on CPU) | nccl | gloo | mpi
  int32_t timeout_s = 300;               // a collective or rendezvous that takes longer fails the run
  int32_t zero_stage = 0;                // 0 = every rank holds the AdamW state; 1 = ZeRO-1, sharded over ranks
  bool overlap_grad_reduce = true;       // gloo: all-reduce gradient buckets during the backward
  template <class V> void visit(V& v) {
    v.field("backend", backend, "auto | nccl | gloo | mpi");
    v.field("zero_stage", zero_stage,
            "0 | 1: 1 shards the AdamW state over the ranks (ZeRO-1: reduce-scatter grads, all-gather weights)",
            at_least(0, 1));
    v.field("overlap_grad_reduce", overlap_grad_reduce,
            "all-reduce gradient buckets while the backward runs (gloo; nccl and zero_stage 1 reduce after it)");
    v.field("timeout_s", timeout_s, "seconds before a stuck collective or rendezvous fails the run",
            at_least(1, 7 * 86400));
  }
};

struct LoggingConfig {
  std::string level = "info";            // debug | info | warn | error
  int32_t console_every = 1;             // print a metrics line every N steps
  bool progress = true;                  // progress display for long phases (generation, scoring, eval, steps)
  double progress_every_s = 30.0;        // seconds between plain progress lines when stderr is not a terminal
  bool tensorboard = true;               // rank 0: TensorBoard event files in <output_dir>/tensorboard/
  template <class V> void visit(V& v) {
    v.field("level", level, "debug | info | warn | error");
    v.field("console_every", console_every, "print a metrics line every N steps", at_least(1));
    v.field("progress", progress,
            "progress of long phases on stderr: a redrawn bar on a terminal, else a plain line every progress_every_s");
    v.field("progress_every_s", progress_every_s,
            "seconds between plain progress lines when stderr is not a terminal (CI, SLURM); 0 = every update",
            at_least(0, 86400));
    v.field("tensorboard", tensorboard,
            "write every metric of metrics.jsonl and the resolved config to <output_dir>/tensorboard/ (rank 0)");
  }
};

struct Config {
  RunConfig run;
  ModelConfig model;
  DataConfig data;
  RolloutConfig rollout;
  std::vector<RewardSpec> rewards = {{"math_accuracy", 1.0, {}}};
  AlgorithmConfig algorithm;
  OptimConfig optim;
  TrainConfig train;
  DistributedConfig distributed;
  LoggingConfig logging;

  // The run directory: run.output_dir, or runs/<run.name>.
  std::string output_dir() const;
};

// Loads a YAML file (empty path = defaults), applies `section.key=value` overrides in order, validates.
// Throws ConfigError naming file:line, key path and the closest known key.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Parses YAML text (tests); `file` is used in messages.
Config parse_config(const std::string& yaml_text, const std::string& file,
                    const std::vector<std::string>& overrides = {});
// Range and enum checks, with the key and the value in the message.
void validate(const Config& c);
// The check the config alone cannot do: a prompt of data.max_prompt_tokens plus rollout.max_new_tokens must fit
// in the loaded model's context (max_position_embeddings). ConfigError naming both numbers otherwise.
void check_context_budget(const Config& c, int64_t max_position_embeddings);
// The resolved config as commented YAML.
std::string to_yaml(const Config& c);

}  // namespace rlvr
