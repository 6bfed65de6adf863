// The policy loss: clipping regions (hand-derived), dual clip, KL estimators, entropy, the aggregation modes,
// and the invariance that matters most: summing micro-batch losses normalised by GlobalNorm gives the
// full-batch loss and gradient, whatever the micro-batch split or the number of (simulated) ranks.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "trainer/config.h"
#include "trainer/policy_loss.h"

using namespace rlvr;
using namespace rlvr::trainer;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

struct TokenResult {
  double loss, grad;
  PolicyLossMetrics m;
};

// One token: logp = log(ratio) (a leaf), old_logp = 0, advantage a. token-mean over 1 token = the per-token loss.
TokenResult one_token(double ratio, double a, PolicyLossConfig cfg) {
  auto logp = torch::full({1, 1}, std::log(ratio), kF64).requires_grad_(true);
  PolicyLossInputs in{logp, torch::zeros({1, 1}, kF64), torch::full({1}, a, kF64), torch::ones({1, 1}, kF64), {}, {}};
  GlobalNorm norm{1, 1, 1};
  auto out = policy_loss(in, cfg, norm);
  out.loss.backward();
  return {out.loss.item<double>(), logp.grad().item<double>(), out.metrics};
}

double val(const torch::Tensor& t) { return t.item<double>(); }

}  // namespace

TEST_CASE("clipped surrogate: the four regions and clip-higher", "[trainer][policy_loss]") {
  PolicyLossConfig cfg;
  cfg.clip_low = 0.2;
  cfg.clip_high = 0.28;  // DAPO clip-higher: ratio range [0.8, 1.28]
  // d(-A * ratio)/d logp = -A * ratio (ratio = exp(logp - old)); a clipped token has gradient 0.
  SECTION("A > 0, ratio 1.1 inside: loss -1.1, grad -1.1") {
    auto r = one_token(1.1, 1, cfg);
    CHECK(r.loss == Approx(-1.1));
    CHECK(r.grad == Approx(-1.1));
    CHECK(val(r.m.clip_frac_high) == 0);
    CHECK(val(r.m.clip_frac_low) == 0);
  }
  SECTION("A > 0, ratio 1.5 above 1 + 0.28: max(-1.5, -1.28) = -1.28, no gradient, high clip") {
    auto r = one_token(1.5, 1, cfg);
    CHECK(r.loss == Approx(-1.28));
    CHECK(r.grad == 0);
    CHECK(val(r.m.clip_frac_high) == 1);
    CHECK(val(r.m.clip_frac_low) == 0);
  }
  SECTION("A > 0, ratio 1.25 is inside with clip-higher (it would be clipped at 1.2 without)") {
    CHECK(one_token(1.25, 1, cfg).loss == Approx(-1.25));
    PolicyLossConfig sym = cfg;
    sym.clip_high = 0.2;
    CHECK(one_token(1.25, 1, sym).loss == Approx(-1.2));
  }
  SECTION("A > 0, ratio 0.5 below 0.8: max(-0.5, -0.8) = -0.5, unclipped, grad -0.5") {
    auto r = one_token(0.5, 1, cfg);
    CHECK(r.loss == Approx(-0.5));
    CHECK(r.grad == Approx(-0.5));
    CHECK(val(r.m.clip_frac_low) == 0);  // the low clip is only active for A < 0
  }
  SECTION("A < 0, ratio 0.5 below 0.8: max(0.5, 0.8) = 0.8, no gradient, low clip") {
    auto r = one_token(0.5, -1, cfg);
    CHECK(r.loss == Approx(0.8));
    CHECK(r.grad == 0);
    CHECK(val(r.m.clip_frac_low) == 1);
    CHECK(val(r.m.clip_frac_high) == 0);
  }
  SECTION("A < 0, ratio 1.5 above: max(1.5, 1.28) = 1.5, unclipped, grad +1.5") {
    auto r = one_token(1.5, -1, cfg);
    CHECK(r.loss == Approx(1.5));
    CHECK(r.grad == Approx(1.5));
    CHECK(val(r.m.clip_frac_high) == 0);  // the high clip is only active for A > 0
  }
  SECTION("advantage scales the loss: A = 2, ratio 1.5 -> -2 * 1.28 = -2.56") {
    CHECK(one_token(1.5, 2, cfg).loss == Approx(-2.56));
  }
}

TEST_CASE("dual clip caps the loss of negative advantages at -A * c", "[trainer][policy_loss]") {
  PolicyLossConfig cfg;
  cfg.clip_ratio_c = 3.0;
  // A = -1, ratio 5: max(5, 1.2) = 5 > 3 -> min(5, 3) = 3, no gradient, dual clip active
  auto big = one_token(5, -1, cfg);
  CHECK(big.loss == Approx(3.0));
  CHECK(big.grad == 0);
  CHECK(val(big.m.dual_clip_frac) == 1);
  CHECK(val(big.m.ratio_max) == Approx(5));
  // A = -2, ratio 5: 10 capped at 2 * 3 = 6
  CHECK(one_token(5, -2, cfg).loss == Approx(6.0));
  // A = -1, ratio 2: 2 < 3 -> 2 with gradient +2
  auto mid = one_token(2, -1, cfg);
  CHECK(mid.loss == Approx(2.0));
  CHECK(mid.grad == Approx(2.0));
  CHECK(val(mid.m.dual_clip_frac) == 0);
  // A > 0 is not touched: ratio 5 -> -1.2
  CHECK(one_token(5, 1, cfg).loss == Approx(-1.2));
  // off (c = 0): A = -1, ratio 5 -> 5
  CHECK(one_token(5, -1, PolicyLossConfig{}).loss == Approx(5.0));
  PolicyLossConfig bad;
  bad.clip_ratio_c = 0.5;
  CHECK_THROWS_WITH(one_token(1, 1, bad), Catch::Matchers::Contains("clip_ratio_c"));
}

TEST_CASE("KL estimators k1, k2, k3 with r = p_ref / p", "[trainer][policy_loss]") {
  auto mask = torch::ones({1, 2}, kF64);
  // token 0: p = 0.5, p_ref = 0.25 -> r = 0.5, log r = -ln 2 = -0.6931471805599453
  // token 1: p = 0.25, p_ref = 0.5 -> r = 2,   log r = +ln 2
  auto logp = torch::tensor({std::log(0.5), std::log(0.25)}, kF64).reshape({1, 2}).requires_grad_(true);
  auto ref = torch::tensor({std::log(0.25), std::log(0.5)}, kF64).reshape({1, 2});
  const double ln2 = std::log(2.0);
  // k1 = -log r = log p - log p_ref: [ln2, -ln2]
  auto k1 = token_kl(logp, ref, mask, KlEstimator::k1);
  CHECK(k1[0][0].item<double>() == Approx(ln2));
  CHECK(k1[0][1].item<double>() == Approx(-ln2));
  // k2 = (log r)^2 / 2 = 0.2402265069591007 for both
  auto k2 = token_kl(logp, ref, mask, KlEstimator::k2);
  CHECK(k2[0][0].item<double>() == Approx(0.5 * ln2 * ln2));
  CHECK(k2[0][1].item<double>() == Approx(0.2402265069591007));
  // k3 = r - 1 - log r: 0.5 - 1 + ln2 = 0.1931471805599453; 2 - 1 - ln2 = 0.3068528194400547
  auto k3 = token_kl(logp, ref, mask, KlEstimator::k3);
  CHECK(k3[0][0].item<double>() == Approx(0.1931471805599453));
  CHECK(k3[0][1].item<double>() == Approx(0.3068528194400547));
  // d k3 / d logp = -(r - 1) = 1 - r: [0.5, -1]
  k3.sum().backward();
  CHECK(logp.grad()[0][0].item<double>() == Approx(0.5));
  CHECK(logp.grad()[0][1].item<double>() == Approx(-1.0));
  // verl low_var_kl clamps: log r = 30 -> clamped to 20 -> e^20 - 21 -> capped at 10; log r = -30 -> -20 ->
  // e^-20 + 19 -> 10. Masked tokens are 0.
  auto big = token_kl(torch::zeros({1, 3}, kF64), torch::tensor({30.0, -30.0, 1.0}, kF64).reshape({1, 3}),
                      torch::tensor({1.0, 1.0, 0.0}, kF64).reshape({1, 3}), KlEstimator::k3);
  CHECK(big[0][0].item<double>() == 10);
  CHECK(big[0][1].item<double>() == 10);
  CHECK(big[0][2].item<double>() == 0);
  // sequence_kl (kl_in_reward): per-sequence sums over valid tokens: k1 -> ln2 - ln2 = 0; k3 -> 0.5
  CHECK(sequence_kl(logp, ref, mask, KlEstimator::k1)[0].item<float>() == Approx(0).margin(1e-7));
  CHECK(sequence_kl(logp, ref, mask, KlEstimator::k3)[0].item<float>() == Approx(0.5));
  CHECK(parse_kl_estimator("low_var_kl") == KlEstimator::k3);
  CHECK_THROWS_WITH(parse_kl_estimator("k4"), Catch::Matchers::Contains("k1, k2, k3"));
}

TEST_CASE("KL term in the loss: loss = pg + beta * agg(kl)", "[trainer][policy_loss]") {
  // A = 0 -> pg = 0. Two tokens with k3 = [0.19314718, 0.30685282]; token-mean = 0.25; beta 0.1 -> 0.025
  auto logp = torch::tensor({std::log(0.5), std::log(0.25)}, kF64).reshape({1, 2}).requires_grad_(true);
  PolicyLossInputs in{logp, logp.detach(), torch::zeros({1}, kF64), torch::ones({1, 2}, kF64),
                      torch::tensor({std::log(0.25), std::log(0.5)}, kF64).reshape({1, 2}), {}};
  PolicyLossConfig cfg;
  cfg.kl_coef = 0.1;
  auto out = policy_loss(in, cfg, GlobalNorm{2, 1, 2});
  CHECK(out.loss.item<double>() == Approx(0.025));
  CHECK(val(out.metrics.kl_loss) == Approx(0.25));
  CHECK(val(out.metrics.kl_mean) == Approx(0.25));
  // gradient: beta * (1 - r) / 2 tokens = 0.1 * [0.5, -1] / 2 = [0.025, -0.05]
  out.loss.backward();
  CHECK(logp.grad()[0][0].item<double>() == Approx(0.025));
  CHECK(logp.grad()[0][1].item<double>() == Approx(-0.05));
  // kl_coef != 0 without ref_logp is an error naming the input
  in.ref_logp = torch::Tensor();
  CHECK_THROWS_WITH(policy_loss(in, cfg, GlobalNorm{2, 1, 2}), Catch::Matchers::Contains("ref_logp"));
}

TEST_CASE("entropy from logits and the entropy bonus", "[trainer][policy_loss]") {
  // [0, 0]: uniform over 2 -> ln 2 = 0.6931471805599453
  // [0, ln 3]: p = [1/4, 3/4] -> H = 1/4 ln 4 + 3/4 ln(4/3) = 0.3465735903 + 0.2157615543 = 0.5623351446
  // [5, 5, 5, 5]: uniform over 4 -> ln 4 (shift invariance)
  auto logits2 = torch::tensor({0.0, 0.0, 0.0, std::log(3.0)}, kF64).reshape({1, 2, 2});
  auto h = token_entropy(logits2);
  REQUIRE(h.sizes() == torch::IntArrayRef({1, 2}));
  CHECK(h[0][0].item<double>() == Approx(std::log(2.0)));
  CHECK(h[0][1].item<double>() == Approx(0.5623351446));
  CHECK(token_entropy(torch::full({1, 1, 4}, 5.0f))[0][0].item<float>() == Approx(std::log(4.0)));
  CHECK(token_entropy(torch::zeros({1, 1, 4}, torch::kBFloat16)).scalar_type() == torch::kFloat32);

  // loss = pg - coef * agg(H); A = 0, token-mean over the 2 tokens: -0.1 * (0.6931472 + 0.5623351) / 2
  auto logp = torch::zeros({1, 2}, kF64).requires_grad_(true);
  PolicyLossInputs in{logp, logp.detach(), torch::zeros({1}, kF64), torch::ones({1, 2}, kF64), {}, h};
  PolicyLossConfig cfg;
  cfg.entropy_coef = 0.1;
  auto out = policy_loss(in, cfg, GlobalNorm{2, 1, 2});
  CHECK(out.loss.item<double>() == Approx(-0.1 * (std::log(2.0) + 0.5623351446) / 2));
  CHECK(val(out.metrics.entropy_mean) == Approx((std::log(2.0) + 0.5623351446) / 2));
  in.entropy = torch::Tensor();
  CHECK_THROWS_WITH(policy_loss(in, cfg, GlobalNorm{2, 1, 2}), Catch::Matchers::Contains("entropy"));
}

TEST_CASE("aggregation modes by hand, masked NaN ignored", "[trainer][policy_loss]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // x = [[1, 2, NaN], [4, 5, 6], [7, 8, 9]], mask = [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
  auto x = torch::tensor({1.0, 2.0, nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0}, kF64).reshape({3, 3});
  auto mask = torch::tensor({1, 1, 0, 1, 0, 0, 0, 0, 0}, torch::kBool).reshape({3, 3});
  GlobalNorm n = local_norm_counts(mask);
  CHECK(n.total_tokens == 3);
  CHECK(n.total_seqs == 2);  // the empty row does not count
  n.norm_len = 4;
  // token-mean: (1 + 2 + 4) / 3 = 7/3
  CHECK(aggregate(x, mask, LossAgg::token_mean, n).item<double>() == Approx(7.0 / 3));
  // seq-mean-token-mean: ((1 + 2)/2 + 4/1) / 2 = (1.5 + 4) / 2 = 2.75
  CHECK(aggregate(x, mask, LossAgg::seq_mean_token_mean, n).item<double>() == Approx(2.75));
  // seq-mean-token-sum-norm: (1 + 2 + 4) / (2 seqs * 4) = 0.875
  CHECK(aggregate(x, mask, LossAgg::seq_mean_token_sum_norm, n).item<double>() == Approx(0.875));
  CHECK(parse_loss_agg("seq-mean-token-sum-norm") == LossAgg::seq_mean_token_sum_norm);
  CHECK_THROWS_WITH(parse_loss_agg("token_mean"), Catch::Matchers::Contains("token-mean, seq-mean-token-mean"));
  CHECK_THROWS_WITH(aggregate(x, mask, LossAgg::seq_mean_token_sum_norm, GlobalNorm{3, 2, 0}),
                    Catch::Matchers::Contains("norm_len"));
}

namespace {

// A batch whose log-probs depend on one shared parameter vector w [D] (like a model's weights):
//   logp[b, t] = -softplus(X[b, t] . w)        [B, L]
//   entropy[b, t] = softplus(X[b, t] . w) / 2   [B, L] (any differentiable function will do)
struct Batch {
  torch::Tensor x, old_logp, ref_logp, adv, mask;  // [B,L,D], [B,L], [B,L], [B], [B,L]
};

Batch make_batch(int64_t b, int64_t l, int64_t d, torch::ScalarType dt) {
  torch::manual_seed(7);
  auto o = torch::TensorOptions().dtype(dt);
  Batch bt;
  bt.x = torch::randn({b, l, d}, o);
  bt.old_logp = -torch::rand({b, l}, o) * 2;
  bt.ref_logp = -torch::rand({b, l}, o) * 2;
  bt.adv = torch::randn({b}, o);
  auto len = torch::randint(1, l + 1, {b}, torch::kInt64);  // response lengths 1..L
  len[3] = 0;                                                  // one fully masked sequence (mask_truncated)
  bt.mask = torch::arange(l).unsqueeze(0) < len.unsqueeze(1);  // [B, L] bool, right padding
  return bt;
}

struct LossGrad {
  double loss;
  torch::Tensor grad;                // [D]
  std::map<std::string, double> m;
};

// Loss over rows [lo, hi) split into `micro` micro-batches, summed; gradient of w (its own copy = one rank).
LossGrad run_rows(const Batch& bt, const torch::Tensor& w0, int64_t lo, int64_t hi, int micro,
                  const PolicyLossConfig& cfg, const GlobalNorm& norm) {
  auto w = w0.detach().clone().requires_grad_(true);
  double total = 0;
  PolicyLossMetrics acc;
  const int64_t step = (hi - lo + micro - 1) / micro;
  for (int64_t s = lo; s < hi; s += step) {
    const int64_t e = std::min(hi, s + step);
    auto z = torch::matmul(bt.x.slice(0, s, e), w);  // [b, L]
    PolicyLossInputs in{-torch::softplus(z), bt.old_logp.slice(0, s, e), bt.adv.slice(0, s, e),
                        bt.mask.slice(0, s, e),  bt.ref_logp.slice(0, s, e), torch::softplus(z) / 2};
    auto out = policy_loss(in, cfg, norm);
    out.loss.backward();
    total += out.loss.item<double>();
    acc.add(out.metrics);
  }
  return {total, w.grad().clone(), acc.to_map()};
}

}  // namespace

TEST_CASE("summed micro-batch losses and gradients equal the full batch for every split and rank count",
          "[trainer][policy_loss]") {
  const int64_t B = 8, L = 6, D = 4;
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    const double tol = dt == torch::kFloat64 ? 1e-12 : 1e-6;
    Batch bt = make_batch(B, L, D, dt);
    auto w0 = torch::randn({D}, torch::TensorOptions().dtype(dt)) * 0.5;
    // The global normaliser: micro-batch counts summed (what the loop all-reduces across ranks).
    GlobalNorm norm;
    for (int64_t s = 0; s < B; s += 2) norm += local_norm_counts(bt.mask.slice(0, s, s + 2));
    norm.norm_len = L;
    REQUIRE(norm.total_seqs == B - 1);
    for (auto agg : {LossAgg::token_mean, LossAgg::seq_mean_token_mean, LossAgg::seq_mean_token_sum_norm}) {
      PolicyLossConfig cfg;
      cfg.clip_low = 0.2;
      cfg.clip_high = 0.28;
      cfg.clip_ratio_c = 3;
      cfg.agg = agg;
      cfg.kl_coef = 0.05;
      cfg.entropy_coef = 0.01;
      const LossGrad full = run_rows(bt, w0, 0, B, 1, cfg, norm);
      REQUIRE(full.grad.abs().sum().item<double>() > 0);
      for (int micro : {2, 4}) {
        INFO(to_string(agg) << ", " << micro << " micro-batches, dtype " << dt);
        const LossGrad split = run_rows(bt, w0, 0, B, micro, cfg, norm);
        CHECK(split.loss == Approx(full.loss).margin(tol).epsilon(0));
        CHECK((split.grad - full.grad).abs().max().item<double>() <= tol);
        for (const auto& [k, v] : full.m) {
          INFO("metric " << k);
          CHECK(split.m.at(k) == Approx(v).margin(tol).epsilon(0));
        }
      }
      // Two "ranks": each computes its half with its own copy of w (2 micro-batches each); the gradient
      // all-reduce is a SUM (no division by world size: the global normaliser already accounts for it).
      {
        INFO(to_string(agg) << ", 2 ranks");
        const LossGrad r0 = run_rows(bt, w0, 0, B / 2, 2, cfg, norm);
        const LossGrad r1 = run_rows(bt, w0, B / 2, B, 2, cfg, norm);
        CHECK(r0.loss + r1.loss == Approx(full.loss).margin(tol).epsilon(0));
        CHECK((r0.grad + r1.grad - full.grad).abs().max().item<double>() <= tol);
        CHECK(r0.m.at("loss/clip_frac_low") + r1.m.at("loss/clip_frac_low") ==
              Approx(full.m.at("loss/clip_frac_low")).margin(tol).epsilon(0));
        CHECK(std::max(r0.m.at("loss/ratio_max"), r1.m.at("loss/ratio_max")) == Approx(full.m.at("loss/ratio_max")));
      }
    }
    // The counter-example that motivates GlobalNorm: normalising each micro-batch by its own token count and
    // averaging over micro-batches (naive gradient accumulation) changes the token-mean loss.
    PolicyLossConfig cfg;
    double naive = 0;
    for (int64_t s = 0; s < B; s += 2) {
      auto sub = bt.mask.slice(0, s, s + 2);
      GlobalNorm local = local_norm_counts(sub);
      local.norm_len = L;
      naive += run_rows(bt, w0, s, s + 2, 1, cfg, local).loss / 4;
    }
    CHECK(std::abs(naive - run_rows(bt, w0, 0, B, 1, cfg, norm).loss) > 1e-4);
  }
}

TEST_CASE("metrics: ratio mean and max, clip fractions as global token means", "[trainer][policy_loss]") {
  // 1 sequence, 4 tokens, the last masked. ratios [1.5, 0.5, 1.0, 9.0(masked)], A = +1:
  // high clip on token 0 only -> 1/3; ratio mean (1.5 + 0.5 + 1) / 3 = 1; max 1.5 (the masked 9 ignored)
  auto logp = torch::tensor({std::log(1.5), std::log(0.5), 0.0, std::log(9.0)}, kF64).reshape({1, 4});
  PolicyLossInputs in{logp, torch::zeros({1, 4}, kF64), torch::ones({1}, kF64),
                      torch::tensor({1.0, 1.0, 1.0, 0.0}, kF64).reshape({1, 4}), {}, {}};
  auto out = policy_loss(in, PolicyLossConfig{}, GlobalNorm{3, 1, 4});
  auto m = out.metrics.to_map();
  CHECK(m.at("loss/clip_frac_high") == Approx(1.0 / 3));
  CHECK(m.at("loss/clip_frac_low") == 0);
  CHECK(m.at("loss/ratio_mean") == Approx(1.0));
  CHECK(m.at("loss/ratio_max") == Approx(1.5));
  // approx_kl_old = mean(old - logp) = -(ln 1.5 + ln 0.5 + 0) / 3 = -ln(0.75)/3 = 0.0958940
  CHECK(m.at("loss/approx_kl_old") == Approx(-std::log(0.75) / 3));
  // loss: token 0 clipped at -1.2, token 1 max(-0.5, -0.8) = -0.5, token 2 -1 -> (-1.2 - 0.5 - 1) / 3 = -0.9
  CHECK(out.loss.item<double>() == Approx(-0.9));
  CHECK(m.at("loss/pg_loss") == Approx(-0.9));
  // bf16 inputs are computed in fp32
  PolicyLossInputs bf{logp.to(torch::kBFloat16), torch::zeros({1, 4}, torch::kBFloat16), torch::ones({1}),
                      torch::ones({1, 4}), {}, {}};
  CHECK(policy_loss(bf, PolicyLossConfig{}, GlobalNorm{4, 1, 4}).loss.scalar_type() == torch::kFloat32);
}

TEST_CASE("policy loss input checks", "[trainer][policy_loss]") {
  using Catch::Matchers::Contains;
  auto z = torch::zeros({2, 3});
  PolicyLossInputs in{z, z, torch::zeros({3}), torch::ones({2, 3}), {}, {}};
  CHECK_THROWS_WITH(policy_loss(in, PolicyLossConfig{}, GlobalNorm{6, 2, 3}), Contains("advantages"));
  in.advantages = torch::zeros({2});
  in.old_logp = torch::zeros({2, 4});
  CHECK_THROWS_WITH(policy_loss(in, PolicyLossConfig{}, GlobalNorm{6, 2, 3}), Contains("old_logp"));
  in.old_logp = z;
  CHECK_THROWS_WITH(policy_loss(in, PolicyLossConfig{}, GlobalNorm{0, 2, 3}), Contains("total_tokens"));
  CHECK_NOTHROW(policy_loss(in, PolicyLossConfig{}, GlobalNorm{6, 2, 3}));
}

TEST_CASE("policy loss config from the algorithm section", "[trainer][policy_loss]") {
  AlgorithmConfig a;
  a.clip_high = 0.28;
  a.clip_ratio_c = 3;
  a.loss_agg = "seq-mean-token-mean";
  a.kl_coef = 0.1;
  a.kl_estimator = "k2";
  auto c = policy_loss_config(a);
  CHECK(c.clip_low == 0.2);
  CHECK(c.clip_high == 0.28);
  CHECK(c.clip_ratio_c == 3);
  CHECK(c.agg == LossAgg::seq_mean_token_mean);
  CHECK(c.kl_coef == 0.1);
  CHECK(c.kl_estimator == KlEstimator::k2);
  a.kl_in_reward = true;  // the KL goes into the reward, not the loss
  CHECK(policy_loss_config(a).kl_coef == 0);
  RolloutConfig r;
  r.max_new_tokens = 300;
  CHECK(resolve_norm_len(a, r) == 300);
  a.loss_norm_len = 1024;
  CHECK(resolve_norm_len(a, r) == 1024);
  a.loss_agg = "dapo";
  CHECK_THROWS_AS(policy_loss_config(a), ConfigError);
}
