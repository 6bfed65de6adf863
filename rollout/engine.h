// RolloutEngine: G completions per prompt sampled with the policy's own weights (colocated, no weight sync).
// Batched prefill (each prompt once, its KV copied to its G samples), batched decode of every active sequence in
// one forward, continuous batching over max_batch_seqs KV-cache slots (a finished sequence frees its slot for
// the next pending sample). It does not tokenize, apply chat templates or score; callers do.
//
// Usage (the trainer, once per step, with the current policy):
//   RolloutEngine engine(model, {.max_batch_seqs = 64, .seed = 1234, .detokenize = [&](auto& ids) {...}});
//   SamplingParams sp{.max_new_tokens = 512, .temperature = 1.0, .eos_ids = tok.eos_ids()};
//   auto completions = engine.generate(prompt_ids, sp, /*group_size=*/8);  // [prompt i, sample j] at i * 8 + j
//
// Semantics:
// - ids are the generated tokens only (no prompt). A completion that ends on an EOS id INCLUDES that id as its last
//   token (as HF generate), and its log-prob; finish = stop. A stop string also ends it with finish = stop; the
//   ids then end with the token that completed the stop string. Otherwise finish = length (max_new_tokens, or the
//   per-sequence KV capacity when max_cached_tokens limits it).
// - logprobs[t] = log_softmax(logits / T)[ids[t]] under the weights at generate() time, before top-k/top-p/min-p
//   (T = 1 when greedy); the trainer's token_logprobs(logits / T) on the same tokens matches to fp32 rounding.
// - text (when a detokenizer is given) = detokenize(ids): the stop token / stop string is part of it.
// - Reproducible: sample j of prompt i at step t draws u(seed, call number, i, j, t) from a counter-based RNG, so
//   a completion depends only on the seed, the number of earlier generate() calls on this engine, its prompt and
//   the weights, not on max_batch_seqs or on which sequences share its batch (up to fp32 rounding in the forward).
// - Runs under at::NoGradGuard (not InferenceMode: tensors the model caches lazily stay usable for training).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "rollout/kv_cache.h"
#include "rollout/sampler.h"

namespace rlvr::rollout {

using Detokenize = std::function<std::string(const std::vector<int64_t>&)>;

struct RolloutOptions {
  int32_t max_batch_seqs = 64;      // KV-cache slots: completions decoded concurrently (counts completions)
  int64_t max_cached_tokens = 0;    // KV-cache budget in tokens over all slots; 0 = slots x (longest prompt + new)
  int64_t max_prefill_tokens = 2048;  // padded prompt tokens per prefill forward (bounds its [rows, T, H] activations)
  uint64_t seed = 0;                // sampling seed (see the reproducibility note above)
  int64_t prompt_index_base = 0;    // added to the prompt index in the RNG key: a data-parallel rank passes the
                                    // global index of its first prompt, so N ranks draw what one process draws
  Detokenize detokenize = {};       // ids -> text; needed for stop strings and Completion::text
  bool tune_malloc = true;          // glibc: keep freed multi-MB blocks in the process (process-wide mallopt;
                                    // avoids page faults every decode step, ~1.5x CPU time on the bench model)
  // Called after every decode step with the completions finished so far and the tokens sampled in this
  // generate() call (progress displays); empty = none.
  std::function<void(int64_t done, int64_t tokens)> on_progress = {};
  bool pack_weights = true;         // CPU fp32: oneDNN-prepacked weight copies for the call (CausalLM::pack_weights)
};

// stop: EOS or a stop string; length: max_new_tokens or the KV capacity; aborted: the caller's stop_if said so
// (GenerateControl), e.g. an online voting method dropping a low-confidence path.
enum class FinishReason { stop, length, aborted };
const char* to_string(FinishReason f);  // "stop" | "length" | "aborted"

struct Completion {
  int64_t prompt_index = 0;         // index into the prompts of the generate() call
  int64_t sample_index = 0;         // 0..G-1 within its prompt
  std::vector<int64_t> ids;         // generated tokens (EOS included when it stopped on one)
  std::vector<float> logprobs;      // one per id, see above
  FinishReason finish = FinishReason::length;
  std::string text;                 // detokenize(ids) when a detokenizer is set, else ""
  // Token confidence per id when GenerateControl::confidence_top_k = k > 0 (else empty): C_t = -(1/k) sum of the
  // log-probs of the k most likely tokens at that position, at the sampling temperature (1 when greedy), the
  // DeepConf measure (arXiv 2508.15260). Higher = more peaked. fp32, computed from the sampling logits.
  std::vector<float> confidence;
  int64_t think_tokens = -1;        // with a thinking budget: tokens inside the think span (-1: never opened)
  bool think_forced = false;        // the budget closed the think span (the close tokens were forced)
};

// Budget forcing for reasoning templates (s1, Muennighoff et al. 2025): once the think span holds max_tokens tokens
// without its close tag, the close tokens are appended instead of sampled, and generation continues with the answer.
// The span opens at `open` in the completion, or at the start when the prompt already opened it.
struct ThinkBudget {
  int32_t max_tokens = 0;             // tokens allowed inside the think span; 0 = off
  std::string open = "<think>";
  std::string close = "</think>";
  std::vector<int64_t> close_ids;     // the tokens appended to close the span (e.g. the tokenized "\n</think>\n\n")
  bool open_in_prompt = false;        // the prompt ends inside an open span (the template wrote "<think>")
};

// Per-call controls for callers that need more than sampling parameters (evaluation's voting methods).
struct GenerateControl {
  std::optional<uint64_t> call;       // RNG call number; unset = the engine's own counter (then incremented)
  int64_t sample_offset = 0;          // added to every sample index (RNG key and Completion::sample_index): a call
                                      // with offset W and G samples draws what samples W .. W+G-1 of one call draw
  int32_t confidence_top_k = 0;       // > 0: fill Completion::confidence (k most likely tokens); 0 = off
  // Called after every sampled token of a running completion; true ends it with finish = aborted (its slot goes to
  // the next pending sequence at once). Empty = never.
  std::function<bool(const Completion&)> stop_if;
  ThinkBudget think;                  // max_tokens > 0 needs a detokenizer
};

// Counters of the last generate() call, for the trainer's metrics and the benchmark.
struct RolloutStats {
  int64_t prompt_tokens = 0;        // real prompt tokens prefilled (each prompt once, refills counted)
  int64_t generated_tokens = 0;     // sampled tokens over all completions
  int64_t prefill_forwards = 0, decode_forwards = 0;
  int64_t max_active = 0;           // most sequences decoded in one forward
  int64_t aborted = 0;              // completions ended by GenerateControl::stop_if
  int64_t slots = 0, slot_len = 0;  // KV-cache geometry used
  double prefill_s = 0, decode_s = 0, sample_s = 0, total_s = 0;  // wall seconds (sampling inside decode_s too)
};

class RolloutEngine {
 public:
  RolloutEngine(std::shared_ptr<model::CausalLM> model, RolloutOptions opts);

  // prompts: token ids, each non-empty; group_size >= 1. Returns prompts.size() * group_size completions, prompt
  // i's samples at i * G .. i * G + G - 1. Errors (rlvr::Error): an empty prompt, a prompt that leaves no room
  // for one new token in the KV cache (the message names the lengths), invalid sampling parameters, stop strings
  // without a detokenizer.
  std::vector<Completion> generate(const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params,
                                   int group_size);
  std::vector<Completion> generate(const std::vector<std::vector<int64_t>>& prompts, const SamplingParams& params,
                                   int group_size, const GenerateControl& control);

  const RolloutStats& last_stats() const { return stats_; }
  const RolloutOptions& options() const { return opts_; }
  // Frees the KV cache (it is kept between calls and regrown only when a call needs more).
  void release_cache() { cache_.reset(); }

 private:
  struct Run;  // the state of one generate() call (engine.cpp)
  void ensure_cache(int64_t slots, int64_t slot_len);

  std::shared_ptr<model::CausalLM> model_;
  RolloutOptions opts_;
  std::unique_ptr<SlotKvCache> cache_;
  uint64_t calls_ = 0;
  RolloutStats stats_;
};

}  // namespace rlvr::rollout
