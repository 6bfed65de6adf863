// Token sampling for the rollout engine: temperature, top-k, top-p, min-p (applied in that order, as HF's
// logits warpers), greedy at temperature 0, and the log-prob the trainer recomputes. It does not decide
// when a sequence stops (rollout/engine.cpp does). Legend: B = rows, V = vocab, K = candidate tokens.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rlvr::rollout {

// What to sample and when to stop. One set of parameters per generate() call (all rows share it).
struct SamplingParams {
  int32_t max_new_tokens = 256;        // per completion, the stop token included; must be >= 1
  double temperature = 1.0;            // 0 = greedy (argmax); > 0 divides the logits
  int32_t top_k = 0;                   // keep the k most likely tokens; 0 = off
  double top_p = 1.0;                  // nucleus: smallest set with mass >= top_p (after top-k); 1.0 = off
  double min_p = 0.0;                  // drop tokens with p < min_p * p_max; 0 = off
  std::vector<int64_t> eos_ids;        // any of these ends a completion (finish = stop); empty = none
  std::vector<std::string> stop;       // stop strings, checked on the detokenized completion tail
  bool ignore_eos = false;             // true: EOS ids do not stop (exactly max_new_tokens unless a stop string)
};

// Checks the ranges (temperature >= 0, top_p in (0, 1], min_p in [0, 1), top_k >= 0, max_new_tokens >= 1).
void validate(const SamplingParams& p);

struct SampleResult {
  at::Tensor tokens;    // [B] int64, on the logits' device
  at::Tensor logprobs;  // [B] fp32: log_softmax(logits / T)[token] (T = 1 when greedy), BEFORE truncation
};

// Samples one token per row. logits [B, V] (any float dtype; computed in fp32); uniforms [B] fp64 in [0, 1)
// on the CPU, one draw per row (inverse-CDF sampling, so a row's token depends only on its logits and its
// uniform, never on the other rows). The returned log-prob is the policy's log-prob at the sampling temperature
// before top-k/top-p/min-p (TRL/verl semantics): on-policy the trainer's importance ratio starts at exactly 1.
SampleResult sample(const at::Tensor& logits, const SamplingParams& p, const at::Tensor& uniforms);

// The distribution sample() draws from: [B, V] fp32 probabilities after temperature and truncation (zeros for
// dropped tokens). For tests and diagnostics; sample() does not materialise it for the whole vocab.
at::Tensor sampling_probs(const at::Tensor& logits, const SamplingParams& p);

// A counter-based uniform in [0, 1) (splitmix64 of the key): the engine draws u(seed, call, prompt, sample, step),
// so a completion does not depend on which other sequences share its batch.
double counter_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

}  // namespace rlvr::rollout
