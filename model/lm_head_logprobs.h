// Log-probs (and entropy) of target tokens straight from final hidden states, through the lm_head in row
// chunks, without ever holding [N, V] logits: the backward recomputes each chunk's logits from the saved
// hidden states and per-row logsumexp. Memory kept for the backward is O(N x H); time is linear in N.
// It does not run the decoder (CausalLM::forward_hidden does) and does not pick which positions to score.
// Legend: N = scored tokens, H = hidden size, V = vocab.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

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

}  // namespace rlvr::model
