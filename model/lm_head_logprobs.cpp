// lm_head_logprobs: a custom autograd function over row chunks (see lm_head_logprobs.h).
// With s = z / temperature the logits of one row, p = softmax(s), lse = logsumexp(s), Hs = entropy:
//   logp = s[t] - lse,  Hs = lse - sum_j p_j s_j = -sum_j p_j log p_j
//   d logp / d s_j = [j == t] - p_j,  d Hs / d s_j = -p_j (log p_j + Hs)
// so the backward needs only hidden, the targets, lse and Hs to rebuild each chunk's gradient.
// Legend: N = scored tokens, n = rows in a chunk, H = hidden size, V = vocab.
#include "model/lm_head_logprobs.h"

#include <ATen/ATen.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include "common/error.h"

namespace rlvr::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t rows_per_chunk(int64_t requested, int64_t V) {
  if (requested > 0) return requested;
  return std::max<int64_t>(1, (int64_t{64} << 20) / std::max<int64_t>(V * 4, 1));  // ~64 MB of fp32 logits
}

// s = hidden_chunk @ weight^T / temperature: [n, V] fp32. The GEMM in the weight dtype, the result upcast.
at::Tensor chunk_logits(const at::Tensor& h, const at::Tensor& weight, double temperature) {
  auto s = at::matmul(h.to(weight.scalar_type()), weight.t()).to(at::kFloat);  // [n, V] fp32
  if (temperature != 1.0) s.div_(temperature);
  return s;
}

struct LmHeadLogprobFn : torch::autograd::Function<LmHeadLogprobFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& targets, double temperature, bool want_entropy, int64_t chunk) {
    // Under CUDA autocast the GEMM would silently change dtype; this function picks its dtypes itself.
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const int64_t N = hidden.size(0);
    auto f32 = hidden.options().dtype(at::kFloat);
    auto logp = at::empty({N}, f32);                                   // [N]
    auto lse = at::empty({N}, f32);                                    // [N]
    auto entropy = want_entropy ? at::empty({N}, f32) : at::zeros({N}, f32);  // [N]
    for (int64_t r = 0; r < N; r += chunk) {
      const int64_t n = std::min(chunk, N - r);
      auto s = chunk_logits(hidden.narrow(0, r, n), weight, temperature);  // [n, V] fp32
      auto l = at::logsumexp(s, -1);                                         // [n]
      auto t = targets.narrow(0, r, n).unsqueeze(1);                         // [n, 1]
      logp.narrow(0, r, n).copy_(s.gather(1, t).squeeze(1) - l);
      lse.narrow(0, r, n).copy_(l);
      if (want_entropy) {
        auto logpr = s.sub_(l.unsqueeze(1));                                 // [n, V] log p (in place)
        entropy.narrow(0, r, n).copy_(-(logpr.exp() * logpr).sum(-1));       // [n]
      }
    }
    ctx->set_materialize_grads(false);  // an unused entropy (or logp) gets no backward pass of its own
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["entropy"] = want_entropy;
    ctx->save_for_backward({hidden, weight, targets, lse, entropy});
    if (!want_entropy) ctx->mark_non_differentiable({entropy});
    return {logp, entropy};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    auto saved = ctx->get_saved_variables();
    const auto &hidden = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3], &entropy = saved[4];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const at::Tensor g_lp = grads[0];                                                           // [N] or undefined
    const at::Tensor g_ent = ctx->saved_data["entropy"].toBool() ? grads[1] : at::Tensor();   // [N] or undefined
    const bool need_h = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1);
    at::Tensor dh, dw;
    if ((!g_lp.defined() && !g_ent.defined()) || (!need_h && !need_w)) return {dh, dw, {}, {}, {}, {}};
    const int64_t N = hidden.size(0);
    const auto wdt = weight.scalar_type();
    if (need_h) dh = at::empty_like(hidden);  // [N, H]
    // dW is a sum over every chunk: accumulated in fp32, cast to the weight dtype once.
    if (need_w) dw = at::zeros(weight.sizes(), weight.options().dtype(at::kFloat));  // [V, H] fp32
    for (int64_t r = 0; r < N; r += chunk) {
      const int64_t n = std::min(chunk, N - r);
      auto h = hidden.narrow(0, r, n);                                       // [n, H]
      auto logpr = chunk_logits(h, weight, temperature);                     // [n, V] s
      logpr.sub_(lse.narrow(0, r, n).unsqueeze(1));                          // [n, V] log p
      auto ds = logpr.exp();                                                 // [n, V] p
      // ds = -p * (g_lp + g_ent * (log p + Hs)), then + g_lp at the target.
      if (g_ent.defined()) {
        auto w = logpr.add_(entropy.narrow(0, r, n).unsqueeze(1)).mul_(g_ent.narrow(0, r, n).unsqueeze(1));
        if (g_lp.defined()) w.add_(g_lp.narrow(0, r, n).unsqueeze(1));
        ds.mul_(w).neg_();
      } else {
        ds.mul_(g_lp.narrow(0, r, n).unsqueeze(1)).neg_();
      }
      if (g_lp.defined()) ds.scatter_add_(1, targets.narrow(0, r, n).unsqueeze(1), g_lp.narrow(0, r, n).unsqueeze(1));
      if (temperature != 1.0) ds.div_(temperature);                          // d/dz = d/ds / temperature
      auto dz = ds.to(wdt);                                                  // [n, V] in the GEMM dtype
      if (need_h) dh.narrow(0, r, n).copy_(at::matmul(dz, weight));          // [n, H]
      if (need_w) {
        auto hw = h.to(wdt);
        if (wdt == at::kFloat) dw.addmm_(dz.t(), hw);                        // [V, H] in place
        else dw.add_(at::matmul(dz.t(), hw));                                // GEMM in wdt, summed in fp32
      }
    }
    if (need_w) dw = dw.to(wdt);
    return {dh, dw, {}, {}, {}, {}};
  }
};

}  // namespace

LmHeadLogprobs lm_head_logprobs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                const LmHeadLogprobOptions& o) {
  RLVR_CHECK(hidden.dim() == 2 && weight.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0) &&
                 hidden.size(1) == weight.size(1),
             "lm_head_logprobs: hidden {}, weight {}, targets {} must be [N, H], [V, H], [N]",
             c10::str(hidden.sizes()), c10::str(weight.sizes()), c10::str(targets.sizes()));
  RLVR_CHECK(o.temperature > 0, "lm_head_logprobs: temperature must be > 0, got {}", o.temperature);
  RLVR_CHECK(o.chunk_rows >= 0, "lm_head_logprobs: chunk_rows must be >= 0, got {}", o.chunk_rows);
  const int64_t V = weight.size(0);
  auto tgt = targets.to(hidden.device(), at::kLong);  // [N]
  if (tgt.device().is_cpu() && tgt.numel() > 0) {     // on CUDA this check would be a sync per call
    const int64_t lo = tgt.min().item<int64_t>(), hi = tgt.max().item<int64_t>();
    RLVR_CHECK(lo >= 0 && hi < V, "lm_head_logprobs: target ids must be in [0, {}), got [{}, {}]", V, lo, hi);
  }
  auto out = LmHeadLogprobFn::apply(hidden, weight, tgt, o.temperature, o.entropy, rows_per_chunk(o.chunk_rows, V));
  LmHeadLogprobs r;
  r.logp = out[0];
  if (o.entropy) r.entropy = out[1];
  return r;
}

}  // namespace rlvr::model
