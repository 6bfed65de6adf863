// Token sampling: temperature, top-k, top-p, min-p, greedy; inverse-CDF draws from caller-given uniforms.
// Truncation works in a sorted candidate space (top-k set, or the smallest top-K that holds the nucleus), so
// the full vocabulary is sorted only when the nucleus is wider than V/4. The untruncated CPU path scans the
// probabilities row by row instead of materialising a cumulative sum. Legend: B = rows, V = vocab, K = candidates.
#include "rollout/sampler.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/parallel.h"

namespace rlvr::rollout {

void validate(const SamplingParams& p) {
  RLVR_CHECK(p.max_new_tokens >= 1, "max_new_tokens must be >= 1, got {}", p.max_new_tokens);
  RLVR_CHECK(std::isfinite(p.temperature) && p.temperature >= 0.0, "temperature must be >= 0, got {}", p.temperature);
  RLVR_CHECK(p.top_k >= 0, "top_k must be >= 0 (0 = off), got {}", p.top_k);
  RLVR_CHECK(p.top_p > 0.0 && p.top_p <= 1.0, "top_p must be in (0, 1] (1 = off), got {}", p.top_p);
  RLVR_CHECK(p.min_p >= 0.0 && p.min_p < 1.0, "min_p must be in [0, 1) (0 = off), got {}", p.min_p);
  for (const auto& s : p.stop) RLVR_CHECK(!s.empty(), "stop strings must not be empty");
}

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

bool greedy(const SamplingParams& p) { return p.temperature == 0.0; }

// Candidates in descending order of scaled logit with a keep mask that is a prefix of each row.
struct Candidates {
  at::Tensor vals;  // [B, K] fp32 scaled logits, descending
  at::Tensor idx;   // [B, K] int64 vocab ids
  at::Tensor keep;  // [B, K] bool
};

// z: [B, V] fp32 scaled logits; lse: [B, 1] logsumexp(z). Applies top-k, then top-p on the top-k renormalised
// distribution (as HF chains its warpers), then min-p relative to the most likely token.
Candidates truncate(const at::Tensor& z, const at::Tensor& lse, const SamplingParams& p) {
  const int64_t V = z.size(1);
  Candidates c;
  at::Tensor lse_ref = lse;  // the distribution top-p measures mass under
  if (p.top_k > 0) {
    auto [v, i] = at::topk(z, std::min<int64_t>(p.top_k, V), -1, /*largest=*/true, /*sorted=*/true);
    c.vals = v;
    c.idx = i;
    lse_ref = at::logsumexp(c.vals, -1, /*keepdim=*/true);  // [B, 1]
  } else if (p.top_p < 1.0) {
    // Grow K until every row's top-K mass reaches top_p: then the nucleus lies inside the candidates.
    int64_t k = std::min<int64_t>(V, 256);
    while (true) {
      auto [v, i] = at::topk(z, k, -1, true, true);
      c.vals = v;
      c.idx = i;
      if (k == V) break;
      double worst = (c.vals - lse).exp().sum(-1).min().item<double>();
      if (worst >= p.top_p + 1e-6) break;
      k = (k * 4 >= V / 2) ? V : k * 4;
    }
  } else {
    auto [v, i] = at::sort(z, -1, /*descending=*/true);  // only min-p on the tensor path
    c.vals = v;
    c.idx = i;
  }
  c.keep = at::ones_like(c.vals, c.vals.options().dtype(at::kBool));
  if (p.top_p < 1.0) {
    auto pr = (c.vals - lse_ref).exp();                       // [B, K]
    auto cum_excl = pr.cumsum(-1) - pr;                       // mass strictly before each candidate
    c.keep = c.keep.logical_and(cum_excl < p.top_p);          // the first candidate always stays (0 < top_p)
  }
  if (p.min_p > 0.0) {
    auto thr = c.vals.narrow(1, 0, 1) + std::log(p.min_p);    // [B, 1]: p_i >= min_p * p_max in log space
    c.keep = c.keep.logical_and(c.vals >= thr);
  }
  return c;
}

// Inverse-CDF draw over non-negative weights w [B, K] (zeros for dropped entries); u [B] on w's device.
// Returns [B] int64 column indices with w > 0.
at::Tensor inverse_cdf(const at::Tensor& w, const at::Tensor& u) {
  auto cdf = w.cumsum(-1).contiguous();                              // [B, K]
  auto target = (u.to(w.scalar_type()).unsqueeze(1) * cdf.narrow(1, cdf.size(1) - 1, 1)).contiguous();  // [B, 1]
  auto choice = at::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).squeeze(1);  // [B]
  // u * total may round up to total (probability ~2^-24): take the last positive-weight column.
  auto last_pos = (w > 0).to(at::kLong).cumsum(-1).argmax(-1);    // first column reaching the final count
  return at::minimum(choice, last_pos);
}

// CPU: w = exp(z - max) [B, V] contiguous (one exp pass; the row's total mass gives the log-normaliser);
// scans each row until the running mass passes u * total. thr: per-row min-p threshold on z (or -inf).
// Returns the [B] int64 tokens; log_total [B] receives log(sum w) of each row (all tokens, not only kept ones).
at::Tensor scan_rows(const at::Tensor& w, const at::Tensor& z, const std::vector<float>& thr, const at::Tensor& u,
                     std::vector<double>& log_total) {
  const int64_t B = w.size(0), V = w.size(1);
  auto out = at::empty({B}, w.options().dtype(at::kLong));
  const float* wp = w.const_data_ptr<float>();
  const float* zp = z.const_data_ptr<float>();
  const double* up = u.const_data_ptr<double>();
  int64_t* op = out.mutable_data_ptr<int64_t>();
  log_total.assign(B, 0.0);
  model::parallel_chunks(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* wr = wp + b * V;
      const float* zr = zp + b * V;
      const float t = thr[b];
      double all = 0.0, total = 0.0;
      for (int64_t i = 0; i < V; ++i) all += wr[i];
      if (t == -std::numeric_limits<float>::infinity()) {
        total = all;
      } else {
        for (int64_t i = 0; i < V; ++i) total += zr[i] >= t ? wr[i] : 0.0f;
      }
      log_total[b] = std::log(all);
      const double target = up[b] * total;
      double acc = 0.0;
      int64_t pick = -1;
      for (int64_t i = 0; i < V; ++i) {
        if (zr[i] < t || wr[i] <= 0.0f) continue;
        pick = i;  // the last positive-weight token, if rounding leaves acc <= target at the end
        acc += wr[i];
        if (acc > target) break;
      }
      op[b] = pick < 0 ? 0 : pick;
    }
  });
  return out;
}

}  // namespace

double counter_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ (b + 0x632BE59BD9B4E019ULL));
  h = splitmix64(h ^ (c + 0x8CB92BA72F3D8DD7ULL));
  h = splitmix64(h ^ (d + 0xD6E8FEB86659FD93ULL));
  return static_cast<double>(h >> 40) * 0x1.0p-24;  // 24 bits: exactly representable in fp32
}

SampleResult sample(const at::Tensor& logits, const SamplingParams& p, const at::Tensor& uniforms) {
  RLVR_CHECK(logits.dim() == 2, "sample: logits must be [B, V], got {} dims", logits.dim());
  const int64_t B = logits.size(0);
  RLVR_CHECK(uniforms.dim() == 1 && uniforms.size(0) == B, "sample: {} uniforms for {} rows", uniforms.numel(), B);
  auto x = logits.to(at::kFloat);  // [B, V] fp32
  SampleResult r;
  if (greedy(p)) {
    r.tokens = x.argmax(-1);                                                    // [B]
    auto lse = at::logsumexp(x, -1);                                            // [B]
    r.logprobs = x.gather(1, r.tokens.unsqueeze(1)).squeeze(1) - lse;           // [B]
    return r;
  }
  auto z = p.temperature == 1.0 ? x : x / p.temperature;   // [B, V] scaled logits (division, as the trainer)
  const bool truncating = p.top_k > 0 || p.top_p < 1.0;
  auto u_dev = uniforms.to(at::kDouble);
  if (!truncating && z.is_cpu()) {
    // One pass of exp: w = exp(z - max) both samples and normalises (lse = max + log(sum w)).
    auto zc = z.contiguous();
    auto zmax = zc.amax(-1, /*keepdim=*/true);                                  // [B, 1]
    auto w = (zc - zmax).exp_();                                                // [B, V] unnormalised
    std::vector<float> thr(B, -std::numeric_limits<float>::infinity());
    const float* mp = zmax.const_data_ptr<float>();
    if (p.min_p > 0.0) {
      for (int64_t b = 0; b < B; ++b) thr[b] = mp[b] + static_cast<float>(std::log(p.min_p));
    }
    std::vector<double> log_total;
    r.tokens = scan_rows(w, zc, thr, u_dev.contiguous().cpu(), log_total);
    r.logprobs = at::empty({B}, x.options());
    const int64_t* tp = r.tokens.const_data_ptr<int64_t>();
    const float* zp = zc.const_data_ptr<float>();
    float* lp = r.logprobs.mutable_data_ptr<float>();
    const int64_t V = zc.size(1);
    for (int64_t b = 0; b < B; ++b) {
      lp[b] = static_cast<float>(static_cast<double>(zp[b * V + tp[b]]) - mp[b] - log_total[b]);
    }
    return r;
  }
  auto lse = at::logsumexp(z, -1, /*keepdim=*/true);        // [B, 1]
  if (!truncating) {
    auto w = (z - lse).exp();                                                   // [B, V]
    if (p.min_p > 0.0) w = w.masked_fill(z < z.amax(-1, true) + std::log(p.min_p), 0.0);
    r.tokens = inverse_cdf(w, u_dev.to(z.device()));
  } else {
    auto c = truncate(z, lse, p);
    auto w = (c.vals - c.vals.narrow(1, 0, 1)).exp().masked_fill(c.keep.logical_not(), 0.0);  // [B, K]
    auto choice = inverse_cdf(w, u_dev.to(z.device()));                          // [B]
    r.tokens = c.idx.gather(1, choice.unsqueeze(1)).squeeze(1);                 // [B]
  }
  r.logprobs = z.gather(1, r.tokens.unsqueeze(1)).squeeze(1) - lse.squeeze(1);  // [B]
  return r;
}

at::Tensor sampling_probs(const at::Tensor& logits, const SamplingParams& p) {
  RLVR_CHECK(logits.dim() == 2, "sampling_probs: logits must be [B, V], got {} dims", logits.dim());
  auto x = logits.to(at::kFloat);
  if (greedy(p)) return at::one_hot(x.argmax(-1), x.size(1)).to(at::kFloat);
  auto z = x / p.temperature;
  auto lse = at::logsumexp(z, -1, true);
  if (p.top_k == 0 && p.top_p >= 1.0 && p.min_p == 0.0) return (z - lse).exp();
  auto c = truncate(z, lse, p);
  auto w = (c.vals - c.vals.narrow(1, 0, 1)).exp().masked_fill(c.keep.logical_not(), 0.0);  // [B, K]
  w = w / w.sum(-1, true);
  return at::zeros_like(z).scatter_(1, c.idx, w);
}

}  // namespace rlvr::rollout
