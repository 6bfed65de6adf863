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
  // ~256 MB of fp32 logits (440 rows at a 151,936 vocabulary): every chunk streams the whole [V, H] weight
  // through each of its GEMMs, so fewer, taller chunks read it fewer times (measured in docs/model.md).
  return std::max<int64_t>(1, (int64_t{256} << 20) / std::max<int64_t>(V * 4, 1));
}

// s = hidden_chunk @ weight^T / temperature, written into `out` ([n, V] fp32, reused across chunks: a fresh
// 256 MB tensor per chunk would be a fresh zero-filled mapping each time). The GEMM in the weight dtype.
void chunk_logits(at::Tensor& out, const at::Tensor& h, const at::Tensor& weight, double temperature) {
  if (weight.scalar_type() == at::kFloat && h.scalar_type() == at::kFloat) at::mm_out(out, h, weight.t());
  else out.copy_(at::matmul(h.to(weight.scalar_type()), weight.t()));  // upcast to fp32 on copy
  if (temperature != 1.0) out.div_(temperature);
}

// The gradient with respect to one chunk's raw logits z, given log p ([n, V], overwritten), p ([n, V], overwritten;
// may be undefined when there is no entropy term: then computed in place of log p), the targets, the rows'
// entropies Hs and the upstream gradients g_lp = dL/dlogp and g_ent = dL/dHs ([n] each, either undefined = 0):
//   dz = (-p * (g_lp + g_ent * (log p + Hs)) + onehot(t) * g_lp) / T   ([n, V] fp32, in one of the buffers).
at::Tensor chunk_logit_grad(at::Tensor logpr, at::Tensor p, const at::Tensor& targets, const at::Tensor& entropy,
                            const at::Tensor& g_lp, const at::Tensor& g_ent, double temperature) {
  const double inv_t = 1.0 / temperature;  // d/dz = d/ds / temperature
  at::Tensor dz;
  if (g_ent.defined()) {
    auto w = logpr.add_(entropy.unsqueeze(1)).mul_(g_ent.unsqueeze(1));   // [n, V] g_ent * (log p + Hs)
    if (g_lp.defined()) w.add_(g_lp.unsqueeze(1));
    dz = p.mul_(w).mul_(-inv_t);
  } else if (g_lp.defined()) {
    dz = logpr.exp_().mul_(g_lp.unsqueeze(1) * -inv_t);                    // [n, V], p in place
  } else {
    dz = logpr.zero_();
  }
  if (g_lp.defined()) dz.scatter_add_(1, targets.unsqueeze(1), g_lp.unsqueeze(1) * inv_t);
  return dz;
}

// dh_rows = dz W (when dh_rows is defined) and dw += dz^T h (when dw is defined; fp32, summed over chunks).
// The GEMMs run in the weight dtype.
void accumulate_chunk_grads(const at::Tensor& dz32, const at::Tensor& h, const at::Tensor& weight, at::Tensor dh_rows,
                            at::Tensor& dw) {
  const auto wdt = weight.scalar_type();
  auto dz = dz32.to(wdt);                                                  // [n, V] in the GEMM dtype
  if (dh_rows.defined()) dh_rows.copy_(at::matmul(dz, weight));            // [n, H]
  if (dw.defined()) {
    auto hw = h.to(wdt);
    if (wdt == at::kFloat) dw.addmm_(dz.t(), hw);                          // [V, H] in place
    else dw.add_(at::matmul(dz.t(), hw));                                  // GEMM in wdt, summed in fp32
  }
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
    auto buf = at::empty({std::min(chunk, N), weight.size(0)}, f32);           // [chunk, V] logits
    auto ebuf = at::empty_like(buf);                                           // [chunk, V] exp terms
    for (int64_t r = 0; r < N; r += chunk) {
      const int64_t n = std::min(chunk, N - r);
      auto s = buf.narrow(0, 0, n), e = ebuf.narrow(0, 0, n);                  // [n, V]
      chunk_logits(s, hidden.narrow(0, r, n), weight, temperature);
      auto t = targets.narrow(0, r, n).unsqueeze(1);                           // [n, 1]
      auto st = s.gather(1, t).squeeze(1);                                     // [n]
      // logsumexp as ATen computes it (max, then the sum of exp(s - max)), in the reused buffers.
      auto m = s.amax(-1, /*keepdim=*/true);                                   // [n, 1]
      at::sub_out(e, s, m).exp_();
      auto l = e.sum(-1).log_().add_(m.squeeze(1));                            // [n]
      logp.narrow(0, r, n).copy_(st - l);
      lse.narrow(0, r, n).copy_(l);
      if (want_entropy) {
        auto logpr = s.sub_(l.unsqueeze(1));                                   // [n, V] log p (in place)
        entropy.narrow(0, r, n).copy_(at::exp_out(e, logpr).mul_(logpr).sum(-1).neg_());  // [n]
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
    auto buf = at::empty({std::min(chunk, N), weight.size(0)}, hidden.options().dtype(at::kFloat));  // [chunk, V]
    auto pbuf = g_ent.defined() ? at::empty_like(buf) : at::Tensor();
    for (int64_t r = 0; r < N; r += chunk) {
      const int64_t n = std::min(chunk, N - r);
      auto h = hidden.narrow(0, r, n);                                       // [n, H]
      auto s = buf.narrow(0, 0, n);                                          // [n, V]
      chunk_logits(s, h, weight, temperature);
      auto logpr = s.sub_(lse.narrow(0, r, n).unsqueeze(1));                 // [n, V] log p (in place)
      at::Tensor p;
      if (g_ent.defined()) {
        p = pbuf.narrow(0, 0, n);                                            // [n, V]
        at::exp_out(p, logpr);
      }
      auto dz = chunk_logit_grad(logpr, p, targets.narrow(0, r, n), entropy.narrow(0, r, n),
                                 g_lp.defined() ? g_lp.narrow(0, r, n) : at::Tensor(),
                                 g_ent.defined() ? g_ent.narrow(0, r, n) : at::Tensor(), temperature);
      accumulate_chunk_grads(dz, h, weight, need_h ? dh.narrow(0, r, n) : at::Tensor(), dw);
    }
    if (need_w) dw = dw.to(wdt);
    return {dh, dw, {}, {}, {}, {}};
  }
};

// The fused pass (lm_head_fused_loss): the forward of each chunk, then at once its gradient for the loss whose
// per-token derivatives `grad` returns; dL/dhidden and dL/dweight are kept for a backward that only scales them.
struct LmHeadFusedFn : torch::autograd::Function<LmHeadFusedFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& targets, double temperature, bool want_entropy, int64_t chunk,
                               bool need_h, bool need_w, const TokenLossGrad& grad) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const int64_t N = hidden.size(0), V = weight.size(0);
    auto f32 = hidden.options().dtype(at::kFloat);
    auto logp = at::empty({N}, f32);                                      // [N]
    auto entropy = want_entropy ? at::empty({N}, f32) : at::Tensor();     // [N]
    at::Tensor dh = need_h ? at::empty_like(hidden) : at::Tensor();       // [N, H]
    at::Tensor dw = need_w ? at::zeros(weight.sizes(), weight.options().dtype(at::kFloat)) : at::Tensor();  // [V, H]
    auto buf = at::empty({std::min(chunk, N), V}, f32);                   // [chunk, V] logits, then log p
    auto ebuf = at::empty_like(buf);                                      // [chunk, V] exp terms, then p
    for (int64_t r = 0; r < N; r += chunk) {
      const int64_t n = std::min(chunk, N - r);
      auto s = buf.narrow(0, 0, n), e = ebuf.narrow(0, 0, n);              // [n, V]
      auto h = hidden.narrow(0, r, n);                                     // [n, H]
      chunk_logits(s, h, weight, temperature);
      auto t = targets.narrow(0, r, n);                                    // [n]
      auto st = s.gather(1, t.unsqueeze(1)).squeeze(1);                    // [n]
      auto m = s.amax(-1, /*keepdim=*/true);                               // [n, 1]
      at::sub_out(e, s, m).exp_();
      auto l = e.sum(-1).log_().add_(m.squeeze(1));                        // [n] logsumexp, as the forward above
      auto lp = logp.narrow(0, r, n);
      lp.copy_(st - l);
      auto logpr = s.sub_(l.unsqueeze(1));                                 // [n, V] log p (in place)
      at::Tensor ent;
      if (want_entropy) {
        ent = entropy.narrow(0, r, n);
        ent.copy_(at::exp_out(e, logpr).mul_(logpr).sum(-1).neg_());      // [n]
      }
      if (!need_h && !need_w) continue;                                    // log-probs only: no gradient asked
      auto [g_lp, g_ent] = grad(r, lp, ent);                               // [n] each, or undefined
      RLVR_CHECK(!g_ent.defined() || want_entropy, "lm_head_fused_loss: an entropy gradient needs options.entropy");
      if (!g_lp.defined() && !g_ent.defined()) continue;
      if (g_ent.defined()) at::exp_out(e, logpr);                          // [n, V] p (e held exp(s - m))
      const at::Tensor p = g_ent.defined() ? e : at::Tensor();
      auto dz = chunk_logit_grad(logpr, p, t, ent, g_lp.defined() ? g_lp.to(at::kFloat) : g_lp,
                                 g_ent.defined() ? g_ent.to(at::kFloat) : g_ent, temperature);
      accumulate_chunk_grads(dz, h, weight, need_h ? dh.narrow(0, r, n) : at::Tensor(), dw);
    }
    if (need_w) dw = dw.to(weight.scalar_type());
    ctx->saved_data["dh"] = dh;
    ctx->saved_data["dw"] = dw;
    ctx->set_materialize_grads(false);
    auto ent_out = want_entropy ? entropy : at::zeros({0}, f32);
    ctx->mark_non_differentiable({logp, ent_out});
    return {at::zeros({}, f32), logp, ent_out};  // the carrier: 0-d, value 0
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // Taken out of the context, so the gradients handed on are the only references: AccumulateGrad can then
    // keep dw as the weight's .grad instead of copying it (a [V, H] fp32 copy is 544 MB at Qwen2.5-0.5B).
    RLVR_CHECK(ctx->saved_data.count("dh") > 0, "lm_head_fused_loss: its backward runs once (no retain_graph)");
    at::Tensor dh = ctx->saved_data["dh"].toTensor(), dw = ctx->saved_data["dw"].toTensor();
    ctx->saved_data.erase("dh");
    ctx->saved_data.erase("dw");
    const at::Tensor& g = grads[0];  // 0-d, or undefined
    if (!g.defined()) return {at::Tensor(), at::Tensor(), {}, {}, {}, {}, {}, {}, {}};
    const bool unit = g.device().is_cpu() && g.item<double>() == 1.0;  // loss.backward(): no scaling pass
    if (!unit) {
      if (dh.defined()) dh.mul_(g.to(dh.scalar_type()));
      if (dw.defined()) dw.mul_(g.to(dw.scalar_type()));
    }
    return {dh, dw, {}, {}, {}, {}, {}, {}, {}};
  }
};

}  // namespace

namespace {

// Checks the shapes and options shared by both entry points; returns the targets as int64 on hidden's device.
at::Tensor checked_targets(const char* fn, const at::Tensor& hidden, const at::Tensor& weight,
                           const at::Tensor& targets, const LmHeadLogprobOptions& o) {
  RLVR_CHECK(hidden.dim() == 2 && weight.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0) &&
                 hidden.size(1) == weight.size(1),
             "{}: hidden {}, weight {}, targets {} must be [N, H], [V, H], [N]", fn, c10::str(hidden.sizes()),
             c10::str(weight.sizes()), c10::str(targets.sizes()));
  RLVR_CHECK(o.temperature > 0, "{}: temperature must be > 0, got {}", fn, o.temperature);
  RLVR_CHECK(o.chunk_rows >= 0, "{}: chunk_rows must be >= 0, got {}", fn, o.chunk_rows);
  const int64_t V = weight.size(0);
  auto tgt = targets.to(hidden.device(), at::kLong);  // [N]
  if (tgt.device().is_cpu() && tgt.numel() > 0) {     // on CUDA this check would be a sync per call
    const int64_t lo = tgt.min().item<int64_t>(), hi = tgt.max().item<int64_t>();
    RLVR_CHECK(lo >= 0 && hi < V, "{}: target ids must be in [0, {}), got [{}, {}]", fn, V, lo, hi);
  }
  return tgt;
}

}  // namespace

LmHeadLogprobs lm_head_logprobs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                const LmHeadLogprobOptions& o) {
  auto tgt = checked_targets("lm_head_logprobs", hidden, weight, targets, o);
  const int64_t V = weight.size(0);
  auto out = LmHeadLogprobFn::apply(hidden, weight, tgt, o.temperature, o.entropy, rows_per_chunk(o.chunk_rows, V));
  LmHeadLogprobs r;
  r.logp = out[0];
  if (o.entropy) r.entropy = out[1];
  return r;
}

LmHeadFusedLoss lm_head_fused_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                   const LmHeadLogprobOptions& o, const TokenLossGrad& grad) {
  auto tgt = checked_targets("lm_head_fused_loss", hidden, weight, targets, o);
  RLVR_CHECK(static_cast<bool>(grad), "lm_head_fused_loss: no per-token gradient function");
  const int64_t V = weight.size(0);
  const bool need_h = hidden.requires_grad() && at::GradMode::is_enabled();
  const bool need_w = weight.requires_grad() && at::GradMode::is_enabled();
  auto out = LmHeadFusedFn::apply(hidden, weight, tgt, o.temperature, o.entropy, rows_per_chunk(o.chunk_rows, V),
                                  need_h, need_w, grad);
  LmHeadFusedLoss r;
  r.carrier = out[0];
  r.logp = out[1];
  if (o.entropy) r.entropy = out[2];
  return r;
}

}  // namespace rlvr::model
