// Packing prompt + response token lists into padded training tensors, and the response log-probs of a
// forward pass. Rows are right-padded (so attention needs no mask); positions are 0..len-1 (as HF builds them
// for right padding).
// Legend: B = sequences, T = longest prompt+response, L = longest response, V = vocab.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "model/causal_lm.h"

namespace rlvr::trainer {

struct PackedBatch {
  at::Tensor tokens;      // [B, T] int64 (padding = pad id)
  at::Tensor positions;   // [B, T] int64
  at::Tensor attn_mask;   // [B, T] int64, 1 = real token
  at::Tensor resp_index;  // [B, L] int64: index into the T-1 next-token predictions for response token j
  at::Tensor resp_mask;   // [B, L] float, 1 = real response token
  at::Tensor resp_tokens; // [B, L] int64
};

// prompts[i] + responses[i] per row; responses may be empty (the row then has no loss tokens).
PackedBatch pack_batch(const std::vector<const std::vector<int64_t>*>& prompts,
                       const std::vector<const std::vector<int64_t>*>& responses, int64_t pad_id,
                       const at::Device& device);

struct ResponseLogprobs {
  at::Tensor logp;     // [B, L] fp32 log-prob of each response token at `temperature` (differentiable)
  at::Tensor entropy;  // [B, L] fp32 per-token entropy (only when requested; detached unless grad_entropy)
};

// One forward over the packed batch up to the final hidden states, then model::lm_head_logprobs at the real
// response positions only (no [B, T, V] logits; memory for the backward O(tokens x hidden)). Logits are divided
// by `temperature` (the sampling temperature, so the ratio against the rollout's log-probs starts at 1; <= 0,
// greedy, scores at 1). Entropy costs one extra reduction per chunk in the forward; with grad_entropy it also
// adds its term to the backward (needed only when the loss has an entropy bonus).
ResponseLogprobs response_logprobs(model::CausalLM& model, const PackedBatch& b, double temperature,
                                   bool want_entropy, bool grad_entropy, bool gradient_checkpointing = false);

}  // namespace rlvr::trainer
