// Packing prompt + response token lists into padded training tensors, and the response log-probs of a
// forward pass. pack_batch rows are right-padded (so attention needs no mask); positions are 0..len-1 (as HF
// builds them for right padding). pack_shared_prompts packs a prompt's completions behind one copy of it.
// Legend: B = sequences, T = longest prompt+response, L = longest response, V = vocab.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "model/causal_lm.h"
#include "model/lm_head_logprobs.h"

namespace rlvr::trainer {

// B completions in R packed rows (R == B for pack_batch; R = distinct prompts for pack_shared_prompts).
struct PackedBatch {
  at::Tensor tokens;      // [R, T] int64 (padding = pad id)
  at::Tensor positions;   // [R, T] int64
  at::Tensor attn_mask;   // [R, T] int64, 1 = real token
  at::Tensor block_mask;  // [R, 1, T, T] bool (true = may attend) for shared-prompt rows; undefined = causal
  at::Tensor resp_row;    // [B] int64: the packed row holding completion b
  at::Tensor resp_index;  // [B, L] int64: position in that row whose next-token prediction is response token j
  at::Tensor resp_mask;   // [B, L] float, 1 = real response token
  at::Tensor resp_tokens; // [B, L] int64
  int64_t real_tokens = 0; // ones in attn_mask (counted while packing, so no device sync to read it)
};

// prompts[i] + responses[i] per row; responses may be empty (the row then has no loss tokens).
PackedBatch pack_batch(const std::vector<const std::vector<int64_t>*>& prompts,
                       const std::vector<const std::vector<int64_t>*>& responses, int64_t pad_id,
                       const at::Device& device);

// The same completions with each distinct prompt once (Prefix Grouper): one row per distinct prompt holds the
// prompt (positions 0..P-1) followed by each of its responses (each at positions P..P+len-1), and block_mask lets
// a response see the prompt and its own earlier tokens only. Log-probs are those of pack_batch (each response sees
// exactly what it sees alone) while the prompt is run once per row instead of once per completion.
PackedBatch pack_shared_prompts(const std::vector<const std::vector<int64_t>*>& prompts,
                                const std::vector<const std::vector<int64_t>*>& responses, int64_t pad_id,
                                const at::Device& device);

// Tokens in the packed rows of a shared-prompt micro-batch (each distinct prompt once), for micro-batch planning.
int64_t shared_prompt_tokens(const std::vector<const std::vector<int64_t>*>& prompts,
                             const std::vector<const std::vector<int64_t>*>& responses);

struct ResponseLogprobs {
  at::Tensor logp;     // [B, L] fp32 log-prob of each response token at `temperature` (differentiable)
  at::Tensor entropy;  // [B, L] fp32 per-token entropy (only when requested; detached unless grad_entropy)
};

// The decoder's final hidden states at the real response tokens of b (N of them, in row-major [B, L] order:
// the nonzeros of resp_mask) and their targets: what reaches the lm_head.
struct ScoredTokens {
  at::Tensor hidden;  // [N, H] (differentiable)
  at::Tensor target;  // [N] int64
  at::Tensor index;   // [N] int64 into the flattened [B * L]
  at::Tensor head_weight;  // [V, H]: the lm_head weight to score hidden with (ForwardOptions::head_weight)
  int64_t B = 0, L = 0;
  at::Tensor scatter(const at::Tensor& rows) const;  // [N] -> [B, L], 0 at the unscored positions
};
ScoredTokens scored_tokens(model::CausalLM& model, const PackedBatch& b, bool gradient_checkpointing);
// The lm_head options of scoring responses sampled at `temperature` (<= 0, greedy, scores at 1).
model::LmHeadLogprobOptions response_head_options(double temperature, bool want_entropy);

// One forward over the packed batch up to the final hidden states, then model::lm_head_logprobs at the real
// response positions only (no [B, T, V] logits; memory for the backward O(tokens x hidden)). Logits are divided
// by `temperature` (the sampling temperature, so the ratio against the rollout's log-probs starts at 1; <= 0,
// greedy, scores at 1). Entropy costs one extra reduction per chunk in the forward; with grad_entropy it also
// adds its term to the backward (needed only when the loss has an entropy bonus).
ResponseLogprobs response_logprobs(model::CausalLM& model, const PackedBatch& b, double temperature,
                                   bool want_entropy, bool grad_entropy, bool gradient_checkpointing = false);

}  // namespace rlvr::trainer
