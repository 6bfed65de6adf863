// Evaluation estimators with hand-computed values.
#include <catch2/catch.hpp>

#include <cmath>

#include "common/error.h"
#include "data/estimators.h"

using namespace rlvr;
using namespace rlvr::data;

TEST_CASE("pass@k: unbiased estimator, hand-computed", "[data]") {
  // n=5, c=2, k=1: 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
  CHECK(pass_at_k(5, 2, 1) == Approx(0.4));
  // n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
  CHECK(pass_at_k(5, 2, 2) == Approx(0.7));
  // n=5, c=2, k=3: 1 - C(3,3)/C(5,3) = 1 - 1/10 = 0.9
  CHECK(pass_at_k(5, 2, 3) == Approx(0.9));
  // n - c < k: every k-subset holds a correct sample
  CHECK(pass_at_k(5, 2, 4) == 1.0);
  CHECK(pass_at_k(4, 0, 2) == 0.0);
  CHECK(pass_at_k(4, 4, 1) == 1.0);
  // n=10, c=1, k=5: 1 - C(9,5)/C(10,5) = 1 - 126/252 = 0.5
  CHECK(pass_at_k(10, 1, 5) == Approx(0.5));
  // Large n stays finite and exact enough: n=1000, c=1, k=1 -> 1/1000
  CHECK(pass_at_k(1000, 1, 1) == Approx(0.001));
  // n=200, c=3, k=100: 1 - (100*99*98)/(200*199*198) = 1 - 970200/7880400
  CHECK(pass_at_k(200, 3, 100) == Approx(1.0 - 970200.0 / 7880400.0));
  CHECK_THROWS_AS(pass_at_k(5, 6, 1), Error);
  CHECK_THROWS_AS(pass_at_k(5, 1, 6), Error);
  CHECK_THROWS_AS(pass_at_k(5, 1, 0), Error);
}

TEST_CASE("maj@k: votes by cluster, no-answer samples abstain, ties go to the first cluster", "[data]") {
  auto S = [](bool correct, int64_t cluster) { return SampleResult{correct, cluster, 0, false}; };
  // clusters A(0, wrong) x2, B(1, right) x3 -> B wins -> 1
  std::vector<SampleResult> s = {S(false, 0), S(true, 1), S(false, 0), S(true, 1), S(true, 1)};
  CHECK(maj_at_k(s) == 1.0);
  // first 3 samples: A has 2 votes, B 1 -> A wins -> 0
  CHECK(maj_at_k(s, 3) == 0.0);
  // first 4: tie 2-2, A appeared first -> 0
  CHECK(maj_at_k(s, 4) == 0.0);
  // three abstentions do not outvote one answer
  std::vector<SampleResult> t = {S(false, -1), S(false, -1), S(true, 2), S(false, -1)};
  CHECK(maj_at_k(t) == 1.0);
  CHECK(maj_at_k({S(false, -1), S(false, -1)}) == 0.0);
  CHECK(maj_at_k({}) == 0.0);
}

TEST_CASE("answer clustering by an equivalence function", "[data]") {
  auto eq = [](const std::string& a, const std::string& b) {
    return std::stod(a) == std::stod(b);  // "0.5" == "0.50"
  };
  std::vector<std::optional<std::string>> answers = {"0.5", std::nullopt, "1", "0.50", "1.0", "2"};
  CHECK(cluster_answers(answers, eq) == std::vector<int64_t>{0, -1, 1, 0, 1, 2});
}

TEST_CASE("summary: mean@n, pass@k, maj@k, length and truncation over problems", "[data]") {
  auto S = [](bool c, int64_t cl, int64_t len, bool tr) { return SampleResult{c, cl, len, tr}; };
  std::vector<std::vector<SampleResult>> probs = {
      // 2 of 4 correct; majority: cluster 0 (wrong) has 2, cluster 1 (right) 2, cluster 0 first -> 0
      {S(false, 0, 10, false), S(true, 1, 20, false), S(false, 0, 30, true), S(true, 1, 40, false)},
      // 1 of 4 correct; majority cluster 5 (right) with 1 vote vs three abstentions -> 1
      {S(false, -1, 100, true), S(true, 5, 50, false), S(false, -1, 100, true), S(false, -1, 100, true)},
  };
  auto m = summarize_eval(probs, {2, 8});
  // mean@4 = (2/4 + 1/4) / 2 = 0.375
  CHECK(m.at("mean@4") == Approx(0.375));
  CHECK(m.at("pass@1") == Approx(0.375));
  // pass@2: p0 = 1 - C(2,2)/C(4,2) = 5/6; p1 = 1 - C(3,2)/C(4,2) = 1/2 -> (5/6 + 1/2)/2 = 2/3
  CHECK(m.at("pass@2") == Approx(2.0 / 3.0));
  // pass@4: both have a correct sample -> 1
  CHECK(m.at("pass@4") == Approx(1.0));
  CHECK(m.count("pass@8") == 0);
  // maj@4 = (0 + 1) / 2; maj@1 = (first sample correct?) (0 + 0) / 2; maj@2: p0 tie 0 vs 1 -> first (0,
  // wrong); p1 only cluster 5 votes -> right -> 0.5
  CHECK(m.at("maj@4") == Approx(0.5));
  CHECK(m.at("maj@1") == Approx(0.0));
  CHECK(m.at("maj@2") == Approx(0.5));
  // lengths: (10+20+30+40+100+50+100+100)/8 = 56.25; truncated 4/8
  CHECK(m.at("response_length/mean") == Approx(56.25));
  CHECK(m.at("truncated_rate") == Approx(0.5));
  CHECK(m.at("problems") == 2);
  probs[1].pop_back();
  CHECK_THROWS_AS(summarize_eval(probs), Error);
}
