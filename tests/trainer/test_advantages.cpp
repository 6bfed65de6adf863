// Advantage estimators against hand-derived numbers (arithmetic in the comments), the edge cases that make
// peers produce NaN (constant groups, groups of one, ungradable rewards), and the config-name parsing.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "trainer/advantages.h"
#include "trainer/choices.h"
#include "trainer/policy_loss.h"
#include "trainer/config.h"

using namespace rlvr;
using namespace rlvr::trainer;

namespace {

torch::Tensor t(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

std::vector<double> vec(const torch::Tensor& x) {
  auto c = x.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void check_close(const torch::Tensor& got, const std::vector<double>& want, double eps = 1e-12) {
  auto g = vec(got);
  REQUIRE(g.size() == want.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("index " << i << ": got " << g[i] << ", want " << want[i]);
    CHECK(g[i] == Approx(want[i]).margin(eps).epsilon(0));
  }
}

AdvantageOptions opts(AdvantageKind k, ScaleRewards s, int64_t g, double eps = 0.0) {
  AdvantageOptions o;
  o.kind = k;
  o.scale = s;
  o.group_size = g;
  o.eps = eps;
  return o;
}

// Two groups of G = 4 used throughout: A = [1, 0, 0, 0], B = [1, 1, 0, 0].
//   A: mean 1/4, deviations [3/4, -1/4, -1/4, -1/4], sum of squares 9/16 + 3/16 = 3/4, unbiased var 3/4/3 = 1/4,
//      std 1/2.
//   B: mean 1/2, deviations [1/2, 1/2, -1/2, -1/2], sum of squares 1, unbiased var 1/3, std 1/sqrt(3).
const std::vector<double> kAB = {1, 0, 0, 0, 1, 1, 0, 0};

}  // namespace

TEST_CASE("grpo with group std: (r - mean_g) / std_g, unbiased std", "[trainer][advantages]") {
  auto r = compute_advantages(t(kAB), opts(AdvantageKind::grpo, ScaleRewards::group, 4));
  // A: [3/4, -1/4, ...] / (1/2) = [1.5, -0.5, -0.5, -0.5]; B: +-1/2 * sqrt(3) = +-0.8660254037844386
  const double h = 0.5 * std::sqrt(3.0);
  check_close(r.advantages, {1.5, -0.5, -0.5, -0.5, h, h, -h, -h});
  check_close(r.group_mean, {0.25, 0.5});
  check_close(r.group_std, {0.5, 1 / std::sqrt(3.0)});
  CHECK(r.num_groups == 2);
  CHECK(r.frac_zero_std == 0.0);

  // eps is added to the std (verl 1e-6): A's first advantage = 0.75 / 0.500001 = 1.499997000006
  auto e = compute_advantages(t(kAB), opts(AdvantageKind::grpo, ScaleRewards::group, 4, 1e-6));
  CHECK(vec(e.advantages)[0] == Approx(0.75 / 0.500001).epsilon(1e-12));
  CHECK(vec(e.advantages)[0] < 1.5);
}

TEST_CASE("grpo with batch std (TRL scale_rewards=batch): std of all raw rewards", "[trainer][advantages]") {
  // Batch of 8: mean 3/8; deviations 5/8 (x3) and -3/8 (x5); sum of squares 3*25/64 + 5*9/64 = 120/64 = 1.875;
  // unbiased var 1.875/7; std = sqrt(0.267857...) = 0.5175491695...
  const double s = std::sqrt(1.875 / 7);
  auto r = compute_advantages(t(kAB), opts(AdvantageKind::grpo, ScaleRewards::batch, 4));
  check_close(r.advantages, {0.75 / s, -0.25 / s, -0.25 / s, -0.25 / s, 0.5 / s, 0.5 / s, -0.5 / s, -0.5 / s});
  CHECK(vec(r.advantages)[0] == Approx(1.4491376746).epsilon(1e-9));
}

TEST_CASE("grpo scale none and dr_grpo: r - mean_g", "[trainer][advantages]") {
  const std::vector<double> want = {0.75, -0.25, -0.25, -0.25, 0.5, 0.5, -0.5, -0.5};
  check_close(compute_advantages(t(kAB), opts(AdvantageKind::grpo, ScaleRewards::none, 4)).advantages, want);
  // dr_grpo ignores scale_rewards
  check_close(compute_advantages(t(kAB), opts(AdvantageKind::dr_grpo, ScaleRewards::group, 4, 1e-4)).advantages,
              want);
}

TEST_CASE("rloo: r_i minus the mean of the other G-1 rewards", "[trainer][advantages]") {
  // A = [1,0,0,0]: 1 - (0+0+0)/3 = 1; 0 - (1+0+0)/3 = -1/3.
  // B = [1,1,0,0]: 1 - (1+0+0)/3 = 2/3; 0 - (1+1+0)/3 = -2/3.  (= G/(G-1) * (r - mean): 4/3 * 3/4 = 1)
  auto r = compute_advantages(t(kAB), opts(AdvantageKind::rloo, ScaleRewards::group, 4));
  check_close(r.advantages, {1, -1.0 / 3, -1.0 / 3, -1.0 / 3, 2.0 / 3, 2.0 / 3, -2.0 / 3, -2.0 / 3});
}

TEST_CASE("reinforce_pp: group-centred, then whitened over the batch (verl masked_whiten)", "[trainer][advantages]") {
  SECTION("uniform weights") {
    // centred a = [3/4,-1/4,-1/4,-1/4, 1/2,1/2,-1/2,-1/2]; batch mean 0; sum of squares 3/4 + 1 = 7/4;
    // unbiased var 7/4/7 = 1/4; a / sqrt(1/4 + 1e-8) = 2a * (1 - 2e-8 ...)
    auto r = compute_advantages(t(kAB), opts(AdvantageKind::reinforce_pp, ScaleRewards::group, 4));
    const double k = 1 / std::sqrt(0.25 + 1e-8);
    check_close(r.advantages, {0.75 * k, -0.25 * k, -0.25 * k, -0.25 * k, 0.5 * k, 0.5 * k, -0.5 * k, -0.5 * k});
  }
  SECTION("token-count weights; a constant group stays exactly 0") {
    // Groups A, B and C = [1,1,1,1]; weights w = [2,1,1,1, 1,1,1,1, 5,5,5,5].
    // Sum w = 29, sum w*a = 2*3/4 - 3/4 + 0 + 0 = 3/4 -> mu = 3/116.
    auto o = opts(AdvantageKind::reinforce_pp, ScaleRewards::group, 4);
    o.whiten_weights = t({2, 1, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5});
    std::vector<double> rw = kAB;
    rw.insert(rw.end(), {1, 1, 1, 1});
    std::vector<double> a = {0.75, -0.25, -0.25, -0.25, 0.5, 0.5, -0.5, -0.5, 0, 0, 0, 0};
    std::vector<double> w = {2, 1, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5};
    double W = 29, mu = 0.75 / 29, ss = 0;
    for (int i = 0; i < 12; ++i) ss += w[i] * (a[i] - mu) * (a[i] - mu);
    const double var = ss / W * W / (W - 1), k = 1 / std::sqrt(var + 1e-8);
    std::vector<double> want(12, 0.0);
    for (int i = 0; i < 8; ++i) want[i] = (a[i] - mu) * k;  // C stays 0 (verl would give -mu*k there)
    auto r = compute_advantages(t(rw), o);
    check_close(r.advantages, want);
    CHECK(r.frac_zero_std == Approx(1.0 / 3));
  }
}

TEST_CASE("constant groups and groups of one give 0, never NaN, even with eps = 0", "[trainer][advantages]") {
  for (auto kind : {AdvantageKind::grpo, AdvantageKind::dr_grpo, AdvantageKind::rloo, AdvantageKind::reinforce_pp}) {
    for (auto scale : {ScaleRewards::group, ScaleRewards::batch, ScaleRewards::none}) {
      INFO(to_string(kind) << " / " << to_string(scale));
      // fp32 0.1 repeated: a naive mean in fp32 leaves tiny non-zero deviations; we return exact zeros.
      auto same = torch::full({8}, 0.1f);
      auto r = compute_advantages(same, opts(kind, scale, 4));
      CHECK(r.advantages.scalar_type() == torch::kFloat32);
      CHECK(torch::equal(r.advantages, torch::zeros({8})));
      CHECK(r.frac_zero_std == 1.0);
      // G = 1: every group is constant.
      auto one = compute_advantages(torch::tensor({1.f, 0.f, 0.5f}), opts(kind, scale, 1));
      CHECK(torch::equal(one.advantages, torch::zeros({3})));
      CHECK(one.frac_zero_std == 1.0);
    }
  }
  // Mixed: one informative group, one constant: the constant group's rows are 0, the other is normal.
  auto r = compute_advantages(t({1, 0, 1, 1}), opts(AdvantageKind::grpo, ScaleRewards::group, 2));
  // [1, 0]: mean 1/2, std sqrt((1/4+1/4)/1) = sqrt(1/2); a = +-(1/2)/sqrt(1/2) = +-0.7071067811865476
  check_close(r.advantages, {std::sqrt(0.5), -std::sqrt(0.5), 0, 0});
  CHECK(r.frac_zero_std == 0.5);
}

TEST_CASE("NaN rewards are ungradable: left out of the statistics, advantage 0", "[trainer][advantages]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Group [1, NaN, 0, 0] has 3 gradable rewards: mean 1/3, deviations [2/3, -1/3, -1/3], sum of squares 6/9,
  // unbiased var 6/9/2 = 1/3, std 1/sqrt(3): a = [2/3*sqrt(3), 0, -1/3*sqrt(3), -1/3*sqrt(3)]
  auto r = compute_advantages(t({1, nan, 0, 0, nan, 1, nan, nan}), opts(AdvantageKind::grpo, ScaleRewards::group, 4));
  const double s3 = std::sqrt(3.0);
  check_close(r.advantages, {2.0 / 3 * s3, 0, -s3 / 3, -s3 / 3, 0, 0, 0, 0});
  CHECK(r.num_ungradable == 4);
  CHECK(r.frac_zero_std == 0.5);  // the second group has one gradable reward
  // rloo over the 3 gradable: 1 - 0 = 1; 0 - (1+0)/2 = -1/2
  auto l = compute_advantages(t({1, nan, 0, 0}), opts(AdvantageKind::rloo, ScaleRewards::group, 4));
  check_close(l.advantages, {1, 0, -0.5, -0.5});
}

TEST_CASE("advantage input checks name the values", "[trainer][advantages]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(compute_advantages(torch::zeros({10}), opts(AdvantageKind::grpo, ScaleRewards::group, 4)),
                    Contains("10") && Contains("group_size 4"));
  CHECK_THROWS_WITH(compute_advantages(torch::zeros({2, 4}), opts(AdvantageKind::grpo, ScaleRewards::group, 4)),
                    Contains("1-D"));
  CHECK_THROWS_WITH(compute_advantages(t({1, INFINITY}), opts(AdvantageKind::grpo, ScaleRewards::group, 2)),
                    Contains("reward[1]"));
  CHECK_THROWS_AS(parse_advantage_kind("gpro"), ConfigError);
  CHECK_THROWS_WITH(parse_advantage_kind("gpro"), Contains("gpro") && Contains("rloo") && Contains("reinforce_pp"));
  CHECK_THROWS_WITH(parse_scale_rewards("std"), Contains("group, batch, none"));
  CHECK(parse_advantage_kind("dr_grpo") == AdvantageKind::dr_grpo);
  CHECK(parse_scale_rewards("batch") == ScaleRewards::batch);
  CHECK(std::string(to_string(AdvantageKind::reinforce_pp)) == "reinforce_pp");
}

TEST_CASE("advantage options from the algorithm section", "[trainer][advantages]") {
  AlgorithmConfig a;
  a.advantage = "rloo";
  a.scale_rewards = "none";
  a.adv_eps = 1e-4;
  auto o = advantage_options(a, 16);
  CHECK(o.kind == AdvantageKind::rloo);
  CHECK(o.scale == ScaleRewards::none);
  CHECK(o.eps == 1e-4);
  CHECK(o.group_size == 16);
  a.advantage = "ppo";
  CHECK_THROWS_AS(advantage_options(a, 16), ConfigError);
}

TEST_CASE("closed choices: every name of the tables parses to its enum and back; others are named errors", "[trainer]") {
  for (const auto& n : rlvr::choices::advantage()) CHECK(trainer::to_string(trainer::parse_advantage_kind(n)) == n);
  for (const auto& n : rlvr::choices::scale_rewards()) CHECK(trainer::to_string(trainer::parse_scale_rewards(n)) == n);
  for (const auto& n : rlvr::choices::loss_agg()) CHECK(trainer::to_string(trainer::parse_loss_agg(n)) == n);
  CHECK(trainer::parse_kl_estimator("low_var_kl") == trainer::KlEstimator::k3);
  CHECK(trainer::parse_kl_estimator("k2") == trainer::KlEstimator::k2);
  CHECK_THROWS_WITH(trainer::parse_advantage_kind("ppo"), Catch::Contains("algorithm.advantage must be one of [grpo, dr_grpo"));
  CHECK_THROWS_WITH(rlvr::parse_config("", "x.yaml", {"algorithm.loss_agg=mean"}),
                    Catch::Contains("algorithm.loss_agg must be one of [token-mean"));
}
