// The policy loss of a packed micro-batch with the lm_head's gradient fused into its forward
// (model::lm_head_fused_loss): each chunk of response logits gives its log-probs and, while still in memory, the
// gradient of the loss through them, so training never recomputes the logits. The loss, the metrics and the
// gradients are those of policy_loss over response_logprobs.
// Legend: B = sequences, L = longest response, N = real response tokens.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <utility>

#include "trainer/batch.h"
#include "trainer/policy_loss.h"

namespace rlvr::trainer {

// dL/dlogp and dL/dentropy ([n] each, the second may be undefined) of the response tokens `index` ([n] int64
// into the flattened [B * L]), given their fp32 log-probs and entropies ([n], detached; entropy undefined unless
// asked). Called once per lm_head chunk; it must depend on these tokens only.
using ResponseTokenGrad = std::function<std::pair<at::Tensor, at::Tensor>(
    const at::Tensor& index, const at::Tensor& logp, const at::Tensor& entropy)>;

struct FusedResponseLoss {
  at::Tensor carrier;         // 0-d, value 0: add it to the loss; its backward runs the decoder's backward
  ResponseLogprobs logprobs;  // [B, L] detached log-probs (and entropy when asked), 0 at padding
};

// One forward of the decoder, then model::lm_head_fused_loss over the real response tokens with `grad`.
FusedResponseLoss fused_response_loss(model::CausalLM& model, const PackedBatch& b, double temperature,
                                      bool want_entropy, bool gradient_checkpointing, const ResponseTokenGrad& grad);

struct ResponseLoss {
  at::Tensor loss;            // 0-d: policy_loss's value; backward() gives policy_loss's gradients
  PolicyLossMetrics metrics;  // policy_loss's metrics
  ResponseLogprobs logprobs;  // [B, L] detached
};

// policy_loss(in with logp and entropy from the model, cfg, norm) for micro-batch b, fused. `in.logp` and
// `in.entropy` are ignored; old_logp, advantages, mask and (kl_coef != 0) ref_logp are [B, L] ([B] advantages
// broadcast) as for policy_loss. The entropy is computed when want_entropy (metrics) or entropy_coef != 0.
ResponseLoss response_policy_loss(model::CausalLM& model, const PackedBatch& b, double temperature,
                                  const PolicyLossInputs& in, const PolicyLossConfig& cfg, const GlobalNorm& norm,
                                  bool want_entropy, bool gradient_checkpointing);

}  // namespace rlvr::trainer
