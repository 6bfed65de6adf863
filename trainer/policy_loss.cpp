// The policy loss of one micro-batch (see policy_loss.h). Every term is a per-token matrix [B, L] reduced by
// aggregate(), which divides by the global-batch constants of GlobalNorm only: that is what makes the sum
// over micro-batches and ranks equal to the full-batch loss. Metrics stay on the device as 0-d tensors.
// Legend: B = sequences in the micro-batch, L = response length, V = vocabulary.
#include "trainer/policy_loss.h"

#include <algorithm>
#include <cmath>

#include <fmt/ranges.h>

#include "common/error.h"
#include "trainer/choices.h"
#include "trainer/config.h"

namespace rlvr::trainer {

namespace {

// Compute dtype: fp32, or fp64 when the input already is fp64.
torch::ScalarType compute_dtype(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

torch::Tensor metric(const torch::Tensor& x) { return x.detach().to(torch::kFloat64); }

void check_same_shape(const torch::Tensor& t, const torch::Tensor& ref, const char* name) {
  RLVR_CHECK(t.defined(), "policy_loss: {} is undefined", name);
  RLVR_CHECK(t.sizes() == ref.sizes(), "policy_loss: {} has shape {}, expected {} (like logp [B, L])", name,
             fmt::join(t.sizes(), "x"), fmt::join(ref.sizes(), "x"));
}

// The clipped surrogate per token (see policy_loss in the header), with what the metrics read from it.
struct Surrogate {
  torch::Tensor adv;          // [B, 1] or [B, L]
  torch::Tensor log_ratio;    // [B, L] clamped to [-20, 20]
  torch::Tensor ratio;        // [B, L]
  torch::Tensor per_token;    // [B, L] the loss of each token
  torch::Tensor dual_active;  // [B, L] bool, undefined without the dual clip
};

Surrogate surrogate(const torch::Tensor& logp, const torch::Tensor& old_logp_in, const torch::Tensor& adv_in,
                    const PolicyLossConfig& cfg) {
  const auto dt = logp.scalar_type();
  Surrogate sg;
  auto old_logp = old_logp_in.detach().to(dt);             // [B, L]
  sg.adv = adv_in.detach().to(dt);                         // [B] or [B, L]
  if (sg.adv.dim() == 1) sg.adv = sg.adv.unsqueeze(1);     // [B, 1] broadcast over tokens
  const auto& adv = sg.adv;
  sg.log_ratio = (logp - old_logp).clamp(-20, 20);         // [B, L] verl: exp() stays finite
  sg.ratio = sg.log_ratio.exp();                           // [B, L]
  auto l1 = -adv * sg.ratio;                               // [B, L]
  auto l2 = -adv * sg.ratio.clamp(1 - cfg.clip_low, 1 + cfg.clip_high);  // [B, L]
  auto clipped = torch::maximum(l1, l2);                   // [B, L] pessimistic bound
  sg.per_token = clipped;
  if (cfg.clip_ratio_c > 0) {
    auto l3 = -adv * cfg.clip_ratio_c;                     // [B, 1] or [B, L]
    sg.dual_active = (clipped > l3) & (adv < 0);           // [B, L] verl pg_clipfrac_lower
    sg.per_token = torch::where(adv < 0, torch::minimum(clipped, l3), clipped);
  }
  return sg;
}

}  // namespace

LossAgg parse_loss_agg(const std::string& name) {
  return static_cast<LossAgg>(choices::index_of("algorithm.loss_agg", choices::loss_agg(), name));
}

const char* to_string(LossAgg a) { return choices::loss_agg().at(static_cast<size_t>(a)).c_str(); }

KlEstimator parse_kl_estimator(const std::string& name) {
  if (name == "kl") return KlEstimator::k1;  // verl's names
  if (name == "mse") return KlEstimator::k2;
  if (name == "low_var_kl") return KlEstimator::k3;
  return static_cast<KlEstimator>(choices::index_of("algorithm.kl_estimator", choices::kl_estimator(), name));
}

const char* to_string(KlEstimator k) {
  switch (k) {
    case KlEstimator::k1: return "k1";
    case KlEstimator::k2: return "k2";
    case KlEstimator::k3: return "k3";
  }
  return "?";
}

GlobalNorm local_norm_counts(const torch::Tensor& mask) {
  RLVR_CHECK(mask.defined() && mask.dim() == 2, "mask must be [B, L], got {} dims", mask.defined() ? mask.dim() : -1);
  auto valid = mask != 0;                                                    // [B, L] bool
  auto counts = torch::stack({valid.sum(), valid.any(1).sum()}).to(torch::kCPU, torch::kFloat64);  // [2], one sync
  GlobalNorm n;
  n.total_tokens = counts[0].item<double>();
  n.total_seqs = counts[1].item<double>();
  return n;
}

PolicyLossConfig policy_loss_config(const AlgorithmConfig& a) {
  PolicyLossConfig c;
  c.clip_low = a.clip_low;
  c.clip_high = a.clip_high;
  c.clip_ratio_c = a.clip_ratio_c;
  c.agg = parse_loss_agg(a.loss_agg);
  c.kl_coef = a.kl_in_reward ? 0.0 : a.kl_coef;
  c.kl_estimator = parse_kl_estimator(a.kl_estimator);
  c.entropy_coef = a.entropy_coef;
  return c;
}

double resolve_norm_len(const AlgorithmConfig& a, const RolloutConfig& r) {
  return a.loss_norm_len > 0 ? double(a.loss_norm_len) : double(r.max_new_tokens);
}

torch::Tensor aggregate(const torch::Tensor& per_token, const torch::Tensor& mask, LossAgg agg,
                        const GlobalNorm& norm) {
  check_same_shape(mask, per_token, "mask");
  auto valid = mask != 0;                                                  // [B, L] bool
  // where() rather than a product: NaN/inf in masked positions must not leak into the sum or the gradient.
  auto x = torch::where(valid, per_token, torch::zeros_like(per_token));  // [B, L]
  switch (agg) {
    case LossAgg::token_mean:
      RLVR_CHECK(norm.total_tokens > 0, "token-mean needs GlobalNorm.total_tokens > 0, got {}", norm.total_tokens);
      return x.sum() / norm.total_tokens;
    case LossAgg::seq_mean_token_mean: {
      RLVR_CHECK(norm.total_seqs > 0, "seq-mean-token-mean needs GlobalNorm.total_seqs > 0, got {}", norm.total_seqs);
      auto n_i = valid.sum(1).to(x.scalar_type()).clamp_min(1);  // [B] (empty rows: 0 / 1 = 0)
      return (x.sum(1) / n_i).sum() / norm.total_seqs;
    }
    case LossAgg::seq_mean_token_sum_norm:
      RLVR_CHECK(norm.total_seqs > 0 && norm.norm_len > 0,
                 "seq-mean-token-sum-norm needs GlobalNorm.total_seqs > 0 and norm_len > 0, got {} and {}",
                 norm.total_seqs, norm.norm_len);
      return x.sum() / (norm.total_seqs * norm.norm_len);
  }
  throw Error("aggregate: bad LossAgg");
}

torch::Tensor aggregation_weights(const torch::Tensor& mask, LossAgg agg, const GlobalNorm& norm) {
  RLVR_CHECK(mask.defined() && mask.dim() == 2, "aggregation_weights: mask must be [B, L], got {} dims",
             mask.defined() ? mask.dim() : -1);
  auto valid = (mask != 0).to(torch::kFloat32);  // [B, L]
  switch (agg) {
    case LossAgg::token_mean:
      RLVR_CHECK(norm.total_tokens > 0, "token-mean needs GlobalNorm.total_tokens > 0, got {}", norm.total_tokens);
      return valid / norm.total_tokens;
    case LossAgg::seq_mean_token_mean: {
      RLVR_CHECK(norm.total_seqs > 0, "seq-mean-token-mean needs GlobalNorm.total_seqs > 0, got {}", norm.total_seqs);
      auto n_i = valid.sum(1, /*keepdim=*/true).clamp_min(1);  // [B, 1]
      return valid / n_i / norm.total_seqs;
    }
    case LossAgg::seq_mean_token_sum_norm:
      RLVR_CHECK(norm.total_seqs > 0 && norm.norm_len > 0,
                 "seq-mean-token-sum-norm needs GlobalNorm.total_seqs > 0 and norm_len > 0, got {} and {}",
                 norm.total_seqs, norm.norm_len);
      return valid / (norm.total_seqs * norm.norm_len);
  }
  throw Error("aggregation_weights: bad LossAgg");
}

torch::Tensor weighted_token_loss(const PolicyLossInputs& in, const torch::Tensor& weights,
                                  const PolicyLossConfig& cfg) {
  RLVR_CHECK(in.logp.defined() && in.logp.dim() == 1, "weighted_token_loss: logp must be [n], got {} dims",
             in.logp.defined() ? in.logp.dim() : -1);
  const int64_t n = in.logp.numel();
  // [1, n], the [B, L] shape of the helpers; every input one value per token.
  auto row = [n](const torch::Tensor& t, const char* name) {
    RLVR_CHECK(t.defined() && t.numel() == n, "weighted_token_loss: {} must have {} values like logp, got {}", name,
               n, t.defined() ? t.numel() : -1);
    return t.reshape({1, n});
  };
  const auto dt = compute_dtype(in.logp);
  auto logp = row(in.logp, "logp").to(dt);                                // [1, n]
  auto w = row(weights, "weights").detach().to(dt);                       // [1, n]
  auto valid = w != 0;
  // where() as in aggregate(): a zero-weight token's NaN/inf never reaches the sum or the gradient.
  auto wsum = [&](const torch::Tensor& x) { return (torch::where(valid, x, torch::zeros_like(x)) * w).sum(); };
  auto loss = wsum(surrogate(logp, row(in.old_logp, "old_logp"), row(in.advantages, "advantages"), cfg).per_token);
  if (cfg.kl_coef != 0)
    loss = loss + cfg.kl_coef * wsum(token_kl(logp, row(in.ref_logp, "ref_logp"), valid, cfg.kl_estimator));
  if (cfg.entropy_coef != 0) loss = loss - cfg.entropy_coef * wsum(row(in.entropy, "entropy").to(dt));
  return loss;
}

torch::Tensor token_kl(const torch::Tensor& logp, const torch::Tensor& ref_logp, const torch::Tensor& mask,
                       KlEstimator est) {
  RLVR_CHECK(logp.defined() && logp.dim() == 2, "token_kl: logp must be [B, L]");
  check_same_shape(ref_logp, logp, "ref_logp");
  check_same_shape(mask, logp, "mask");
  const auto dt = compute_dtype(logp);
  auto lr = ref_logp.detach().to(dt) - logp.to(dt);  // [B, L] log(p_ref / p)
  torch::Tensor kl;
  switch (est) {
    case KlEstimator::k1: kl = -lr; break;
    case KlEstimator::k2: kl = 0.5 * lr.square(); break;
    case KlEstimator::k3: {
      auto c = lr.clamp(-20, 20);                   // verl low_var_kl: exp() stays finite
      kl = (c.exp() - c - 1).clamp(-10, 10);        // and the estimate is capped at 10
      break;
    }
  }
  return torch::where(mask != 0, kl, torch::zeros_like(kl));  // [B, L]
}

torch::Tensor sequence_kl(const torch::Tensor& logp, const torch::Tensor& ref_logp, const torch::Tensor& mask,
                          KlEstimator est) {
  torch::NoGradGuard no_grad;
  return token_kl(logp.detach(), ref_logp, mask, est).sum(1).to(torch::kFloat32);  // [B]
}

torch::Tensor token_entropy(const torch::Tensor& logits) {
  RLVR_CHECK(logits.defined() && logits.dim() == 3, "token_entropy: logits must be [B, L, V], got {} dims",
             logits.defined() ? logits.dim() : -1);
  const int64_t b = logits.size(0), l = logits.size(1), v = logits.size(2);
  auto flat = logits.reshape({b * l, v});                                  // [B*L, V]
  const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 26) / std::max<int64_t>(v, 1));  // ~256 MiB fp32
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < b * l; s += rows) {
    auto x = flat.slice(0, s, std::min(b * l, s + rows)).to(compute_dtype(logits));  // [r, V]
    auto p = torch::softmax(x, -1);                                                  // [r, V]
    parts.push_back(torch::logsumexp(x, -1) - (p * x).sum(-1));                     // [r]
  }
  if (parts.empty()) return torch::zeros({b, l}, logits.options().dtype(compute_dtype(logits)));
  return torch::cat(parts).reshape({b, l});  // [B, L]
}

void PolicyLossMetrics::add(const PolicyLossMetrics& o) {
  auto acc = [](torch::Tensor& a, const torch::Tensor& b, bool take_max) {
    if (!b.defined()) return;
    if (!a.defined()) {
      a = b.clone();
      return;
    }
    a = take_max ? torch::maximum(a, b) : a + b;
  };
  acc(clip_frac_low, o.clip_frac_low, false);
  acc(clip_frac_high, o.clip_frac_high, false);
  acc(dual_clip_frac, o.dual_clip_frac, false);
  acc(ratio_mean, o.ratio_mean, false);
  acc(ratio_max, o.ratio_max, true);
  acc(approx_kl_old, o.approx_kl_old, false);
  acc(kl_mean, o.kl_mean, false);
  acc(entropy_mean, o.entropy_mean, false);
  acc(pg_loss, o.pg_loss, false);
  acc(kl_loss, o.kl_loss, false);
  acc(entropy_loss, o.entropy_loss, false);
}

std::map<std::string, double> PolicyLossMetrics::to_map() const {
  const std::pair<const char*, const torch::Tensor*> fields[] = {
      {"clip_frac_low", &clip_frac_low}, {"clip_frac_high", &clip_frac_high}, {"dual_clip_frac", &dual_clip_frac},
      {"ratio_mean", &ratio_mean},       {"ratio_max", &ratio_max},           {"approx_kl_old", &approx_kl_old},
      {"kl_mean", &kl_mean},             {"entropy_mean", &entropy_mean},     {"pg_loss", &pg_loss},
      {"kl_loss", &kl_loss},             {"entropy_loss", &entropy_loss}};
  torch::Device dev = torch::kCPU;
  for (const auto& f : fields)
    if (f.second->defined()) dev = f.second->device();
  std::vector<torch::Tensor> vals;
  for (const auto& f : fields)
    vals.push_back(f.second->defined() ? f.second->detach().to(dev, torch::kFloat64).reshape({})
                                       : torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(dev)));
  auto all = torch::stack(vals).cpu();  // [11] fp64, one sync
  std::map<std::string, double> out;
  for (size_t i = 0; i < vals.size(); ++i) out[std::string("loss/") + fields[i].first] = all[i].item<double>();
  return out;
}

PolicyLossOutput policy_loss(const PolicyLossInputs& in, const PolicyLossConfig& cfg, const GlobalNorm& norm) {
  RLVR_CHECK(in.logp.defined() && in.logp.dim() == 2, "policy_loss: logp must be [B, L], got {} dims",
             in.logp.defined() ? in.logp.dim() : -1);
  check_same_shape(in.old_logp, in.logp, "old_logp");
  check_same_shape(in.mask, in.logp, "mask");
  const int64_t b = in.logp.size(0);
  RLVR_CHECK(in.advantages.defined() && ((in.advantages.dim() == 1 && in.advantages.size(0) == b) ||
                                         in.advantages.sizes() == in.logp.sizes()),
             "policy_loss: advantages must be [B={}] or [B, L] like logp, got shape {}", b,
             in.advantages.defined() ? fmt::format("{}", fmt::join(in.advantages.sizes(), "x")) : "undefined");
  RLVR_CHECK(cfg.clip_low >= 0 && cfg.clip_low < 1, "clip_low must be in [0, 1), got {}", cfg.clip_low);
  RLVR_CHECK(cfg.clip_high >= 0, "clip_high must be >= 0, got {}", cfg.clip_high);
  RLVR_CHECK(cfg.clip_ratio_c == 0 || cfg.clip_ratio_c > 1, "clip_ratio_c must be 0 (off) or > 1, got {}",
             cfg.clip_ratio_c);
  RLVR_CHECK(norm.total_tokens > 0, "policy_loss needs GlobalNorm.total_tokens > 0 (metrics are token means), got {}",
             norm.total_tokens);
  if (cfg.kl_coef != 0) check_same_shape(in.ref_logp, in.logp, "ref_logp (kl_coef != 0)");
  if (cfg.entropy_coef != 0) check_same_shape(in.entropy, in.logp, "entropy (entropy_coef != 0)");

  const auto dt = compute_dtype(in.logp);
  auto valid = in.mask != 0;                               // [B, L] bool
  auto logp = in.logp.to(dt);                              // [B, L]
  auto sg = surrogate(logp, in.old_logp, in.advantages, cfg);
  const auto &ratio = sg.ratio, &log_ratio = sg.log_ratio, &adv = sg.adv, &per_token = sg.per_token;
  const auto& dual_active = sg.dual_active;

  PolicyLossOutput out;
  auto& m = out.metrics;
  auto zero = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(in.logp.device()));
  auto pg = aggregate(per_token, in.mask, cfg.agg, norm);  // 0-d
  out.loss = pg;
  m.pg_loss = metric(pg);

  // Token-mean contributions over the global batch: sum over this micro-batch's valid tokens / total_tokens.
  auto token_share = [&](const torch::Tensor& x) {
    auto xv = torch::where(valid, x.detach().to(dt), torch::zeros({}, logp.options().dtype(dt)));
    return metric(xv.sum() / norm.total_tokens);
  };
  m.clip_frac_low = token_share(((ratio < 1 - cfg.clip_low) & (adv < 0)).to(dt));
  m.clip_frac_high = token_share(((ratio > 1 + cfg.clip_high) & (adv > 0)).to(dt));
  m.dual_clip_frac = dual_active.defined() ? token_share(dual_active.to(dt)) : zero;
  m.ratio_mean = token_share(ratio);
  m.ratio_max = in.logp.numel() > 0 ? metric(torch::where(valid, ratio.detach(), torch::zeros_like(ratio)).max())
                                    : zero;
  m.approx_kl_old = token_share(-log_ratio);

  m.kl_mean = m.kl_loss = m.entropy_mean = m.entropy_loss = zero;
  if (in.ref_logp.defined()) {
    auto kl = token_kl(logp, in.ref_logp, in.mask, cfg.kl_estimator);  // [B, L], differentiable in logp
    m.kl_mean = token_share(kl);
    if (cfg.kl_coef != 0) {
      auto kl_loss = aggregate(kl, in.mask, cfg.agg, norm);
      out.loss = out.loss + cfg.kl_coef * kl_loss;
      m.kl_loss = metric(kl_loss);
    }
  }
  if (in.entropy.defined()) {
    check_same_shape(in.entropy, in.logp, "entropy");
    auto ent = in.entropy.to(dt);                                       // [B, L]
    m.entropy_mean = token_share(ent);
    if (cfg.entropy_coef != 0) {
      auto ent_loss = aggregate(ent, in.mask, cfg.agg, norm);
      out.loss = out.loss - cfg.entropy_coef * ent_loss;
      m.entropy_loss = metric(ent_loss);
    }
  }
  return out;
}

}  // namespace rlvr::trainer
