// Log-probs (and entropy) of target tokens straight from final hidden states, through the lm_head in row
// chunks, without ever holding [N, V] logits: the backward recomputes each chunk's logits from the saved
// hidden states and per-row logsumexp. Memory kept for the backward is O(N x H); time is linear in N.
// It does not run the decoder (CausalLM::forward_hidden does) and does not pick which positions to score.
// Legend: N = scored tokens, H = hidden size, V = vocab.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <utility>

namespace rlvr::model {

struct LmHeadLogprobOptions {
  double temperature = 1.0;   // logits are divided by this (> 0) before the softmax: the sampling temperature
  bool entropy = false;       // also return the entropy of softmax(logits / temperature); costs one more
                              // reduction over each chunk in the forward, and (only when the loss uses it)
                              // one more [rows, V] elementwise pass in the backward
  int64_t chunk_rows = 0;     // rows of logits materialised at once; 0 = enough for ~256 MB of fp32 logits
};

struct LmHeadLogprobs {
  at::Tensor logp;     // [N] fp32 log softmax(hidden @ weight^T / temperature)[target], differentiable
  at::Tensor entropy;  // [N] fp32, differentiable (undefined unless options.entropy)
};

// hidden [N, H] (any float dtype), weight [V, H] (the lm_head, or the tied embedding), targets [N] int64 in
// [0, V). The GEMM runs in the weight's dtype (as CausalLM::forward computes logits, so trainer and sampler
// see the same logits); the softmax, logsumexp, entropy and the gradient with respect to the logits are fp32.
// Gradients: hidden's in hidden's dtype, weight's in weight's dtype, accumulated over chunks in fp32.
LmHeadLogprobs lm_head_logprobs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                const LmHeadLogprobOptions& options = {});

// Fused forward and backward for a loss that is a sum of per-token terms, L = sum_t l_t(logp_t, Hs_t), such as the
// GRPO/PPO surrogate with its KL and entropy terms under a fixed aggregation (trainer::aggregation_weights). For the
// rows [first, first + n) of a chunk, `grad` gets their fp32 log-probs and entropies ([n], detached; entropy
// undefined unless options.entropy) and returns dL/dlogp and dL/dHs ([n] each; either may be undefined = 0). It
// must not depend on other rows: each chunk's gradient is formed while its logits are still in memory, so the
// lm_head's GEMMs run three times per chunk (logits, dL/dhidden, dL/dweight) instead of four (lm_head_logprobs's
// backward recomputes the logits). dL/dhidden [N, H] and dL/dweight [V, H] are computed during this call (for the
// inputs that require grad, under grad mode) and held until the backward, which only scales them.
using TokenLossGrad = std::function<std::pair<at::Tensor, at::Tensor>(int64_t first, const at::Tensor& logp,
                                                                      const at::Tensor& entropy)>;

struct LmHeadFusedLoss {
  at::Tensor carrier;  // 0-d fp32, value 0: add it to the loss; its backward delivers dL/dhidden and dL/dweight
  at::Tensor logp;     // [N] fp32, detached (the same values as lm_head_logprobs)
  at::Tensor entropy;  // [N] fp32, detached (undefined unless options.entropy)
};

LmHeadFusedLoss lm_head_fused_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                   const LmHeadLogprobOptions& options, const TokenLossGrad& grad);

}  // namespace rlvr::model
