// Sampler tests: hand-computed truncated distributions (top-k, top-p, min-p, temperature, their order), greedy,
// the returned log-prob (before truncation), chi-square fit of the draws, and seeded reproducibility.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "rollout/sampler.h"

using rlvr::rollout::counter_uniform;
using rlvr::rollout::sample;
using rlvr::rollout::SamplingParams;
using rlvr::rollout::sampling_probs;

namespace {

// logits = log p for p = [0.1, 0.2, 0.3, 0.4]: softmax gives p back at T = 1.
at::Tensor logits_1234() { return at::tensor({0.1, 0.2, 0.3, 0.4}, at::kFloat).log().unsqueeze(0); }  // [1, 4]

void check_probs(const at::Tensor& got, const std::vector<double>& want) {  // 6-digit hand values
  REQUIRE(got.size(1) == static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("token " << i);
    CHECK(got[0][i].item<double>() == Approx(want[i]).margin(2e-6));
  }
}

SamplingParams params(double T, int k, double top_p, double min_p) {
  SamplingParams p;
  p.temperature = T;
  p.top_k = k;
  p.top_p = top_p;
  p.min_p = min_p;
  return p;
}

at::Tensor uniforms(int64_t n, uint64_t seed) {
  auto u = at::empty({n}, at::kDouble);
  for (int64_t i = 0; i < n; ++i) u[i] = counter_uniform(seed, 0, i, 0, 0);
  return u;
}

// Pearson chi-square of counts against probabilities (cells with p = 0 must have no draws).
double chi_square(const at::Tensor& tokens, const std::vector<double>& p) {
  std::vector<double> counts(p.size(), 0.0);
  auto t = tokens.cpu();
  for (int64_t i = 0; i < t.numel(); ++i) counts.at(t[i].item<int64_t>()) += 1;
  double chi = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) {
      REQUIRE(counts[i] == 0.0);
      continue;
    }
    const double e = p[i] * static_cast<double>(t.numel());
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

}  // namespace

TEST_CASE("sampling_probs: top-k keeps the k most likely, renormalised", "[rollout][sampler]") {
  check_probs(sampling_probs(logits_1234(), params(1.0, 2, 1.0, 0.0)), {0, 0, 3.0 / 7, 4.0 / 7});
  check_probs(sampling_probs(logits_1234(), params(1.0, 1, 1.0, 0.0)), {0, 0, 0, 1});
  check_probs(sampling_probs(logits_1234(), params(1.0, 10, 1.0, 0.0)), {0.1, 0.2, 0.3, 0.4});  // k > V: all
}

TEST_CASE("sampling_probs: top-p keeps the smallest set reaching the mass", "[rollout][sampler]") {
  // Descending 0.4, 0.3, 0.2, 0.1; mass strictly before each: 0, 0.4, 0.7, 0.9. Keep while that is < top_p.
  check_probs(sampling_probs(logits_1234(), params(1.0, 0, 0.35, 0.0)), {0, 0, 0, 1});
  check_probs(sampling_probs(logits_1234(), params(1.0, 0, 0.6, 0.0)), {0, 0, 3.0 / 7, 4.0 / 7});
  check_probs(sampling_probs(logits_1234(), params(1.0, 0, 0.75, 0.0)), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
  check_probs(sampling_probs(logits_1234(), params(1.0, 0, 0.95, 0.0)), {0.1, 0.2, 0.3, 0.4});
}

TEST_CASE("sampling_probs: min-p drops tokens below min_p * p_max", "[rollout][sampler]") {
  // p_max = 0.4: min_p 0.6 -> threshold 0.24 keeps {0.3, 0.4}; min_p 0.3 -> 0.12 keeps {0.2, 0.3, 0.4}.
  check_probs(sampling_probs(logits_1234(), params(1.0, 0, 1.0, 0.6)), {0, 0, 3.0 / 7, 4.0 / 7});
  check_probs(sampling_probs(logits_1234(), params(1.0, 0, 1.0, 0.3)), {0, 2.0 / 9, 3.0 / 9, 4.0 / 9});
}

TEST_CASE("sampling_probs: temperature scales the logits", "[rollout][sampler]") {
  // T = 2: p_i^(1/2) / sum = [.316228, .447214, .547723, .632456] / 1.943621 = [.162700, .230093, .281805, .325401].
  check_probs(sampling_probs(logits_1234(), params(2.0, 0, 1.0, 0.0)), {0.162700, 0.230093, 0.281805, 0.325401});
  // T = 0.5: p^2 / sum = [.01, .04, .09, .16] / .30.
  check_probs(sampling_probs(logits_1234(), params(0.5, 0, 1.0, 0.0)), {0.01 / 0.3, 0.04 / 0.3, 0.09 / 0.3, 0.16 / 0.3});
  // Greedy: all the mass on the argmax.
  check_probs(sampling_probs(logits_1234(), params(0.0, 0, 1.0, 0.0)), {0, 0, 0, 1});
}

TEST_CASE("sampling_probs: top-p measures mass after top-k (HF warper order)", "[rollout][sampler]") {
  // top_k 3 renormalises to [.2, .3, .4] / .9 = [.222, .333, .444]; mass before .222 is .778 >= .75: dropped.
  // (top-p on the full distribution would keep 0.2: mass before it 0.7 < 0.75.)
  check_probs(sampling_probs(logits_1234(), params(1.0, 3, 0.75, 0.0)), {0, 0, 3.0 / 7, 4.0 / 7});
  // min-p after top-k: [.222, .333, .444] with min_p 0.6 -> threshold .267 keeps {.333, .444}.
  check_probs(sampling_probs(logits_1234(), params(1.0, 3, 1.0, 0.6)), {0, 0, 3.0 / 7, 4.0 / 7});
}

TEST_CASE("sampling_probs: wide nucleus over a large vocab equals a full sort", "[rollout][sampler]") {
  // V = 5000 near-flat logits: the nucleus holds thousands of tokens, beyond the first top-256 guess.
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  auto logits = at::randn({3, 5000}, g, at::kFloat) * 0.3;  // [3, 5000]
  for (double top_p : {0.5, 0.9, 0.99}) {
    auto got = sampling_probs(logits, params(1.0, 0, top_p, 0.0));
    auto [vals, idx] = at::sort(logits, -1, true);
    auto p = vals.softmax(-1);
    auto keep = (p.cumsum(-1) - p) < top_p;
    auto w = p.masked_fill(keep.logical_not(), 0.0);
    auto want = at::zeros_like(p).scatter_(1, idx, w / w.sum(-1, true));
    INFO("top_p " << top_p << " kept " << keep.sum().item<int64_t>());
    CHECK(at::allclose(got, want, 1e-5, 1e-7));
  }
}

TEST_CASE("sample: greedy picks the argmax and returns log_softmax at T = 1", "[rollout][sampler]") {
  auto logits = at::tensor({1.0f, 3.0f, 2.0f, -1.0f, 3.5f, 0.0f}, at::kFloat).view({2, 3});  // [2, 3]
  auto r = sample(logits, params(0.0, 0, 1.0, 0.0), uniforms(2, 1));
  CHECK(r.tokens[0].item<int64_t>() == 1);
  CHECK(r.tokens[1].item<int64_t>() == 1);
  // row 0: 3 - log(e + e^3 + e^2) = -0.407606; row 1: 3.5 - log(e^-1 + e^3.5 + 1) = 3.5 - log(34.483329) = -0.040476.
  CHECK(r.logprobs[0].item<double>() == Approx(-0.407606).margin(1e-5));
  CHECK(r.logprobs[1].item<double>() == Approx(-0.040476).margin(1e-5));
}

TEST_CASE("sample: the log-prob is the tempered policy's, before truncation", "[rollout][sampler]") {
  // top_k 1 at T = 0.5 always draws token 3; its log-prob is log(.16 / .30) = -0.628609 (not 0).
  auto r = sample(logits_1234(), params(0.5, 1, 1.0, 0.0), uniforms(1, 2));
  CHECK(r.tokens[0].item<int64_t>() == 3);
  CHECK(r.logprobs[0].item<double>() == Approx(std::log(0.16 / 0.30)).margin(1e-6));
  // Same with top-p and min-p truncation at T = 1: log 0.4.
  for (auto p : {params(1.0, 0, 0.3, 0.0), params(1.0, 0, 1.0, 0.9)}) {
    auto r2 = sample(logits_1234(), p, uniforms(1, 3));
    CHECK(r2.tokens[0].item<int64_t>() == 3);
    CHECK(r2.logprobs[0].item<double>() == Approx(std::log(0.4)).margin(1e-6));
  }
}

TEST_CASE("sample: draws follow the truncated distribution (chi-square)", "[rollout][sampler]") {
  // 6 tokens; 40000 draws; chi-square critical value at p = 0.001: 20.52 (5 dof), 16.27 (3 dof), 13.82 (2 dof).
  const std::vector<double> p = {0.05, 0.1, 0.15, 0.2, 0.22, 0.28};
  const int64_t n = 40000;
  auto row = at::tensor(p, at::kDouble).log().to(at::kFloat).unsqueeze(0);  // [1, 6]
  auto logits = row.expand({n, 6}).contiguous();                             // [n, 6]
  SECTION("untruncated (row scan)") {
    auto r = sample(logits, params(1.0, 0, 1.0, 0.0), uniforms(n, 11));
    CHECK(chi_square(r.tokens, p) < 20.52);
  }
  SECTION("temperature 2") {
    std::vector<double> q;
    double s = 0;
    for (double x : p) s += std::sqrt(x);
    for (double x : p) q.push_back(std::sqrt(x) / s);
    auto r = sample(logits, params(2.0, 0, 1.0, 0.0), uniforms(n, 12));
    CHECK(chi_square(r.tokens, q) < 20.52);
  }
  SECTION("top-k 4 (candidate path)") {
    auto r = sample(logits, params(1.0, 4, 1.0, 0.0), uniforms(n, 13));
    const double m = 0.15 + 0.2 + 0.22 + 0.28;
    CHECK(chi_square(r.tokens, {0, 0, 0.15 / m, 0.2 / m, 0.22 / m, 0.28 / m}) < 16.27);
  }
  SECTION("top-p 0.6") {
    // mass before: .28 -> 0, .22 -> .28, .2 -> .5, .15 -> .7: keep {.28, .22, .2}.
    auto r = sample(logits, params(1.0, 0, 0.6, 0.0), uniforms(n, 14));
    CHECK(chi_square(r.tokens, {0, 0, 0, 0.2 / 0.7, 0.22 / 0.7, 0.28 / 0.7}) < 13.82);
  }
  SECTION("min-p 0.5 (row scan with threshold)") {
    // threshold 0.14 keeps {.15, .2, .22, .28}.
    auto r = sample(logits, params(1.0, 0, 1.0, 0.5), uniforms(n, 15));
    const double m = 0.15 + 0.2 + 0.22 + 0.28;
    CHECK(chi_square(r.tokens, {0, 0, 0.15 / m, 0.2 / m, 0.22 / m, 0.28 / m}) < 16.27);
  }
}

TEST_CASE("sample: reproducible under a seed, rows independent of each other", "[rollout][sampler]") {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  auto logits = at::randn({16, 50}, g, at::kFloat);  // [16, 50]
  auto p = params(0.8, 20, 0.9, 0.0);
  auto a = sample(logits, p, uniforms(16, 42));
  auto b = sample(logits, p, uniforms(16, 42));
  CHECK(at::equal(a.tokens, b.tokens));
  CHECK(at::equal(a.logprobs, b.logprobs));
  auto c = sample(logits, p, uniforms(16, 43));
  CHECK_FALSE(at::equal(a.tokens, c.tokens));
  // A row sampled alone gets the same token as in the batch (its uniform decides, not its neighbours).
  auto u = uniforms(16, 42);
  for (int64_t i : {0, 7, 15}) {
    auto one = sample(logits.narrow(0, i, 1), p, u.narrow(0, i, 1));
    CHECK(one.tokens[0].item<int64_t>() == a.tokens[i].item<int64_t>());
  }
  // counter_uniform: deterministic, in [0, 1), different keys differ.
  CHECK(counter_uniform(1, 2, 3, 4, 5) == counter_uniform(1, 2, 3, 4, 5));
  CHECK(counter_uniform(1, 2, 3, 4, 5) != counter_uniform(1, 2, 3, 4, 6));
  CHECK(counter_uniform(1, 2, 3, 4, 5) != counter_uniform(2, 2, 3, 4, 5));
  double mean = 0;
  for (int i = 0; i < 10000; ++i) {
    double x = counter_uniform(9, 0, i, 0, 0);
    REQUIRE(x >= 0.0);
    REQUIRE(x < 1.0);
    mean += x / 10000;
  }
  CHECK(mean == Approx(0.5).margin(0.01));
}

TEST_CASE("validate: out-of-range parameters are errors", "[rollout][sampler]") {
  CHECK_THROWS_AS(rlvr::rollout::validate(params(-1.0, 0, 1.0, 0.0)), rlvr::Error);
  CHECK_THROWS_AS(rlvr::rollout::validate(params(1.0, -1, 1.0, 0.0)), rlvr::Error);
  CHECK_THROWS_AS(rlvr::rollout::validate(params(1.0, 0, 0.0, 0.0)), rlvr::Error);
  CHECK_THROWS_AS(rlvr::rollout::validate(params(1.0, 0, 1.5, 0.0)), rlvr::Error);
  CHECK_THROWS_AS(rlvr::rollout::validate(params(1.0, 0, 1.0, 1.0)), rlvr::Error);
  SamplingParams p;
  p.max_new_tokens = 0;
  CHECK_THROWS_AS(rlvr::rollout::validate(p), rlvr::Error);
  CHECK_NOTHROW(rlvr::rollout::validate(params(0.0, 0, 1.0, 0.0)));
}
