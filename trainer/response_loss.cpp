// The fused policy loss of a packed micro-batch (see response_loss.h).
// Legend: B = sequences, L = longest response, N = real response tokens, n = tokens of one lm_head chunk.
#include "trainer/response_loss.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "common/error.h"

namespace rlvr::trainer {

FusedResponseLoss fused_response_loss(model::CausalLM& model, const PackedBatch& b, double temperature,
                                      bool want_entropy, bool gradient_checkpointing, const ResponseTokenGrad& grad) {
  auto st = scored_tokens(model, b, gradient_checkpointing);
  auto index = st.index;
  model::TokenLossGrad rows_grad = [&](int64_t first, const at::Tensor& logp, const at::Tensor& entropy) {
    return grad(index.narrow(0, first, logp.size(0)), logp, entropy);
  };
  auto r = model::lm_head_fused_loss(st.hidden, st.head_weight, st.target,
                                     response_head_options(temperature, want_entropy), rows_grad);
  FusedResponseLoss out;
  out.carrier = r.carrier;
  out.logprobs.logp = st.scatter(r.logp);
  if (want_entropy) out.logprobs.entropy = st.scatter(r.entropy);
  return out;
}

ResponseLoss response_policy_loss(model::CausalLM& model, const PackedBatch& b, double temperature,
                                  const PolicyLossInputs& in, const PolicyLossConfig& cfg, const GlobalNorm& norm,
                                  bool want_entropy, bool gradient_checkpointing) {
  const int64_t B = b.resp_mask.size(0), L = b.resp_mask.size(1);
  auto check_bl = [&](const at::Tensor& t, const char* name) {
    RLVR_CHECK(t.defined() && t.dim() == 2 && t.size(0) == B && t.size(1) == L,
               "response_policy_loss: {} must be [B={}, L={}] like the packed responses", name, B, L);
  };
  check_bl(in.mask, "mask");
  check_bl(in.old_logp, "old_logp");
  if (cfg.kl_coef != 0) check_bl(in.ref_logp, "ref_logp (kl_coef != 0)");
  auto flat = [&](const at::Tensor& t) { return t.defined() ? t.expand({B, L}).reshape({B * L}) : t; };  // [B * L]
  auto adv = in.advantages.defined() && in.advantages.dim() == 1 ? in.advantages.unsqueeze(1) : in.advantages;
  const auto old_f = flat(in.old_logp), adv_f = flat(adv), ref_f = cfg.kl_coef != 0 ? flat(in.ref_logp) : at::Tensor();
  const auto w_f = flat(aggregation_weights(in.mask, cfg.agg, norm));
  const bool grad_entropy = cfg.entropy_coef != 0;
  // dL/dlogp (and dL/dentropy) of the scored tokens `idx` ([n] into [B * L]): autograd over their n values.
  ResponseTokenGrad grad = [&](const at::Tensor& idx, const at::Tensor& logp, const at::Tensor& entropy) {
    c10::AutoGradMode on(true);  // the fused head calls this from inside its own autograd function
    PolicyLossInputs t;
    t.logp = logp.detach().requires_grad_(true);
    t.old_logp = old_f.index_select(0, idx);
    t.advantages = adv_f.index_select(0, idx);
    if (ref_f.defined()) t.ref_logp = ref_f.index_select(0, idx);
    if (grad_entropy) t.entropy = entropy.detach().requires_grad_(true);
    auto l = weighted_token_loss(t, w_f.index_select(0, idx), cfg);
    if (!grad_entropy) return std::make_pair(torch::autograd::grad({l}, {t.logp})[0], at::Tensor());
    auto g = torch::autograd::grad({l}, {t.logp, t.entropy}, {}, false, false, /*allow_unused=*/true);
    return std::make_pair(g[0], g[1]);
  };
  auto fused = fused_response_loss(model, b, temperature, want_entropy || grad_entropy, gradient_checkpointing, grad);
  // The value and the metrics from policy_loss itself on the (detached) log-probs; the gradient from the carrier.
  PolicyLossInputs all = in;
  all.logp = fused.logprobs.logp;
  all.entropy = fused.logprobs.entropy;
  auto po = policy_loss(all, cfg, norm);
  ResponseLoss out;
  out.loss = po.loss.detach() + fused.carrier.to(po.loss.scalar_type());
  out.metrics = std::move(po.metrics);
  out.logprobs = std::move(fused.logprobs);
  return out;
}

}  // namespace rlvr::trainer
