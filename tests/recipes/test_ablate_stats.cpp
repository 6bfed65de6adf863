// The ablation's statistics with numbers derived by hand: the resampling stream, percentile indices, paired
// differences, per-problem accuracy from per-sample JSONL, the bootstrap (degenerate, two-point and
// normal-approximation cases, and one resample replayed by hand on a fixed seed), the verdict thresholds
// and the power warnings. Also the random_reward control function.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "recipes/ablate_stats.h"
#include "rewards/rubric.h"

using namespace rlvr::recipes;
namespace fs = std::filesystem;

TEST_CASE("splitmix64 matches the reference stream for seed 0", "[recipes][stats]") {
  // Vigna's splitmix64.c with x = 0: the first outputs are 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4,
  // 0x06c45d188009454f, 0xf88bb8a8724c81ec.
  SplitMix64 r(0);
  CHECK(r.next() == 0xe220a8397b1dcdafULL);
  CHECK(r.next() == 0x6e789e6aa1b965f4ULL);
  CHECK(r.next() == 0x06c45d188009454fULL);
  CHECK(r.next() == 0xf88bb8a8724c81ecULL);
}

TEST_CASE("percentile interval picks the documented order statistics", "[recipes][stats]") {
  std::vector<double> v;
  for (int i = 1000; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  // B = 1000, c = 0.95: indices floor(25) = 25 and ceil(975) - 1 = 974 of 1..1000 -> values 26 and 975.
  auto [lo, hi] = percentile_interval(v, 0.95);
  CHECK(lo == 26);
  CHECK(hi == 975);
  // B = 20, c = 0.9: indices floor(1) = 1 and ceil(19) - 1 = 18 -> values 2 and 19.
  std::vector<double> w;
  for (int i = 1; i <= 20; ++i) w.push_back(i);
  auto [lo2, hi2] = percentile_interval(w, 0.9);
  CHECK(lo2 == 2);
  CHECK(hi2 == 19);
  CHECK_THROWS_AS(percentile_interval({}, 0.95), rlvr::Error);
  CHECK_THROWS_AS(percentile_interval(w, 1.0), rlvr::Error);
}

TEST_CASE("paired differences are taken cell by cell", "[recipes][stats]") {
  ScoreMatrix a = {{1.0, 0.5}, {0.25, 0.0}};
  ScoreMatrix b = {{0.5, 0.5}, {0.0, 0.5}};
  auto d = paired_differences(a, b);
  REQUIRE(d.size() == 2);
  CHECK(d[0] == std::vector<double>{0.5, 0.0});
  CHECK(d[1] == std::vector<double>{0.25, -0.5});
  // (0.5 + 0 + 0.25 - 0.5) / 4
  CHECK(matrix_mean(d) == Approx(0.0625));
  auto g = differences_from(a, {0.25, 0.25});
  CHECK(g[0] == std::vector<double>{0.75, 0.25});
  CHECK(g[1] == std::vector<double>{0.0, -0.25});
  CHECK_THROWS_AS(paired_differences(a, {{1.0, 0.5}}), rlvr::Error);
  CHECK_THROWS_AS(paired_differences(a, {{1.0}, {0.5}}), rlvr::Error);
}

TEST_CASE("per-problem accuracy from per-sample JSONL", "[recipes][stats]") {
  auto dir = fs::temp_directory_path() / "rlvr_test_ablate_stats";
  fs::create_directories(dir);
  auto p = dir / "samples.jsonl";
  {
    std::ofstream f(p);
    // problem 0: 3 of 4 correct; problem 1: 0 of 4; problem 2: 1 of 2 (lines in any order)
    f << R"({"index":0,"sample":0,"correct":true})" "\n" R"({"index":1,"sample":0,"correct":false})" "\n"
      << R"({"index":0,"sample":1,"correct":false})" "\n" R"({"index":2,"sample":0,"correct":true})" "\n"
      << R"({"index":0,"sample":2,"correct":true})" "\n" R"({"index":1,"sample":1,"correct":false})" "\n"
      << R"({"index":0,"sample":3,"correct":true})" "\n" R"({"index":1,"sample":2,"correct":false})" "\n"
      << R"({"index":1,"sample":3,"correct":false})" "\n" R"({"index":2,"sample":1,"correct":false})" "\n";
  }
  auto acc = per_problem_accuracy(p);
  REQUIRE(acc.size() == 3);
  CHECK(acc[0] == 0.75);
  CHECK(acc[1] == 0.0);
  CHECK(acc[2] == 0.5);
  {
    std::ofstream f(p);  // problem 1 missing: a truncated file
    f << R"({"index":0,"correct":true})" "\n" R"({"index":2,"correct":true})" "\n";
  }
  CHECK_THROWS_WITH(per_problem_accuracy(p), Catch::Contains("problems 0..2 expected, 2 present"));
  {
    std::ofstream f(p);
    f << R"({"index":0,"correct":true})" "\n" R"({"index":1})" "\n";
  }
  CHECK_THROWS_WITH(per_problem_accuracy(p), Catch::Contains("samples.jsonl:2"));
  fs::remove_all(dir);
}

TEST_CASE("bootstrap of a constant matrix has a zero-width interval", "[recipes][stats]") {
  ScoreMatrix m(3, std::vector<double>(5, 0.125));
  auto iv = bootstrap_mean_ci(m, 500, 0.95, 7);
  CHECK(iv.estimate == Approx(0.125));
  CHECK(iv.lo == Approx(0.125));
  CHECK(iv.hi == Approx(0.125));
  CHECK(iv.resamples == 500);
}

TEST_CASE("bootstrap of a two-point sample covers both points", "[recipes][stats]") {
  // One seed, problems {0, 1}: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so with
  // B = 2000 the 2.5% and 97.5% order statistics (indices 50 and 1949) fall in the masses at 0 and 1
  // (about 500 draws each; fewer than 51 has probability below 1e-100).
  auto iv = bootstrap_mean_ci({{0.0, 1.0}}, 2000, 0.95, 1);
  CHECK(iv.estimate == 0.5);
  CHECK(iv.lo == 0.0);
  CHECK(iv.hi == 1.0);
  // Two seeds, one problem: the same by resampling seeds.
  auto iv2 = bootstrap_mean_ci({{0.0}, {1.0}}, 2000, 0.95, 1);
  CHECK(iv2.lo == 0.0);
  CHECK(iv2.hi == 1.0);
}

TEST_CASE("bootstrap on a fixed seed replays by hand", "[recipes][stats]") {
  // Seeds x problems = 2 x 1, values 0 and 10, one resample from seed 0: the rows are the first two outputs
  // mod 2 (0xe220...daf is odd -> row 1, 0x6e78...5f4 is even -> row 0), so the mean is (10 + 0) / 2 = 5.
  auto iv = bootstrap_mean_ci({{0.0}, {10.0}}, 1, 0.95, 0);
  CHECK(iv.estimate == 5.0);
  CHECK(iv.lo == 5.0);
  CHECK(iv.hi == 5.0);
  // Seeds x problems = 1 x 2, values 0 and 10: the row draw takes output 1, the columns outputs 2 and 3
  // (even -> 0, odd -> 1): the mean is again 5. A 1 x 3 row {0, 3, 6} takes its columns from outputs 2, 3, 4
  // mod 3, which are 0, 1, 1 (0x6e789e6aa1b965f4 = 0 mod 3, 0x06c45d188009454f and 0xf88bb8a8724c81ec = 1):
  // (0 + 3 + 3) / 3 = 2.
  auto iv2 = bootstrap_mean_ci({{0.0, 10.0}}, 1, 0.95, 0);
  CHECK(iv2.lo == 5.0);
  auto iv3 = bootstrap_mean_ci({{0.0, 3.0, 6.0}}, 1, 0.95, 0);
  CHECK(iv3.lo == 2.0);
  CHECK(iv3.estimate == 3.0);
  // The same seed gives the same interval; the interval does not depend on the order of calls.
  ScoreMatrix m = {{0, 1, 1, 0, 1}, {1, 1, 0, 0, 0}, {0.5, 0.25, 1, 1, 0}};
  auto a = bootstrap_mean_ci(m, 1000, 0.95, 42), b = bootstrap_mean_ci(m, 1000, 0.95, 42);
  CHECK(a.lo == b.lo);
  CHECK(a.hi == b.hi);
}

TEST_CASE("bootstrap interval matches the normal approximation on many problems", "[recipes][stats]") {
  // 400 problems, half solved: the mean's standard error is sqrt(0.25 / 400) = 0.025, so the 95% interval
  // is about 0.5 +/- 1.96 * 0.025 = [0.451, 0.549].
  std::vector<double> row;
  for (int i = 0; i < 400; ++i) row.push_back(i % 2);
  auto iv = bootstrap_mean_ci({row}, 4000, 0.95, 3);
  CHECK(iv.estimate == 0.5);
  CHECK(iv.lo == Approx(0.451).margin(0.008));
  CHECK(iv.hi == Approx(0.549).margin(0.008));
}

TEST_CASE("seed resampling widens the interval when seeds disagree", "[recipes][stats]") {
  // Same problems, two seeds that differ by a constant: the problem-only interval of each row is 0 wide,
  // the two-way interval spans the seed means (0.1 and 0.3).
  ScoreMatrix m = {std::vector<double>(50, 0.1), std::vector<double>(50, 0.3)};
  auto iv = bootstrap_mean_ci(m, 2000, 0.95, 5);
  CHECK(iv.estimate == Approx(0.2));
  CHECK(iv.lo == Approx(0.1));
  CHECK(iv.hi == Approx(0.3));
}

TEST_CASE("verdict thresholds", "[recipes][stats]") {
  auto iv = [](double lo, double hi) {
    Interval i;
    i.lo = lo, i.hi = hi;
    return i;
  };
  CHECK(verdict_from_interval(iv(0.01, 0.2)) == Verdict::better);
  CHECK(verdict_from_interval(iv(-0.2, -0.01)) == Verdict::worse);
  CHECK(verdict_from_interval(iv(-0.1, 0.1)) == Verdict::not_distinguishable);
  CHECK(verdict_from_interval(iv(0.0, 0.1)) == Verdict::not_distinguishable);   // touching 0
  CHECK(verdict_from_interval(iv(-0.1, 0.0)) == Verdict::not_distinguishable);
  CHECK(std::string(to_string(Verdict::better)) == "better than baseline");
  CHECK(std::string(to_string(Verdict::not_distinguishable)) == "not distinguishable from baseline");
  CHECK(std::string(to_string(Verdict::worse)) == "worse than baseline");
}

TEST_CASE("power warnings name what is missing", "[recipes][stats]") {
  PowerInputs ok;
  ok.seeds = 3, ok.ci_half_width = 0.03, ok.zero_std_frac = 0.2;
  CHECK(power_warnings(ok).empty());
  PowerInputs few = ok;
  few.seeds = 2;
  auto w = power_warnings(few);
  REQUIRE(w.size() == 1);
  CHECK_THAT(w[0], Catch::Contains("only 2 seed(s)"));
  PowerInputs wide = ok;
  wide.ci_half_width = 0.08;
  w = power_warnings(wide);
  REQUIRE(w.size() == 1);
  CHECK_THAT(w[0], Catch::Contains("+/-8.0 points") && Catch::Contains("5.0 points"));
  PowerInputs flat = ok;
  flat.zero_std_frac = 0.8, flat.zero_std_arm = "format_only";
  w = power_warnings(flat);
  REQUIRE(w.size() == 1);
  CHECK_THAT(w[0], Catch::Contains("'format_only'") && Catch::Contains("80%"));
}

TEST_CASE("random_reward is a seeded coin with the given rate", "[recipes][rewards]") {
  using namespace rlvr::rewards;
  auto score = [](const Rubric& r, const std::string& text, const std::string& ref) {
    CompletionInput in;
    in.completion = text, in.reference = ref;
    return r.score_one(in).total;
  };
  auto r30 = Rubric::from_specs({{"random_reward", 1.0, {{"rate", "0.3"}}}});
  auto r0 = Rubric::from_specs({{"random_reward", 1.0, {{"rate", "0"}}}});
  auto r1 = Rubric::from_specs({{"random_reward", 1.0, {{"rate", "1"}}}});
  // Over 20000 distinct completions the fraction of 1s is 0.3 +/- 4 standard errors (sqrt(.21/20000) = 0.0032),
  // and the same among correct answers as among wrong ones (independent of the verdict).
  double ones = 0, ones_wrong = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string ref = std::to_string(i % 50);
    std::string right = "\\boxed{" + ref + "} #" + std::to_string(i);
    std::string wrong = "\\boxed{" + std::to_string(i % 50 + 1) + "} #" + std::to_string(i);
    double v = score(r30, right, ref);
    CHECK((v == 0.0 || v == 1.0));
    ones += v;
    ones_wrong += score(r30, wrong, ref);
    if (i < 200) {
      CHECK(score(r0, right, ref) == 0.0);
      CHECK(score(r1, right, ref) == 1.0);
      CHECK(score(r30, right, ref) == v);  // deterministic per completion
    }
  }
  CHECK(ones / 20000 == Approx(0.3).margin(0.013));
  CHECK(ones_wrong / 20000 == Approx(0.3).margin(0.013));
  // A different seed draws different coins for the same completions.
  auto other = Rubric::from_specs({{"random_reward", 1.0, {{"rate", "0.5"}, {"seed", "1"}}}});
  auto base = Rubric::from_specs({{"random_reward", 1.0, {{"rate", "0.5"}}}});
  int differ = 0;
  for (int i = 0; i < 200; ++i) differ += score(other, "x" + std::to_string(i), "1") != score(base, "x" + std::to_string(i), "1");
  CHECK(differ > 50);
  CHECK_THROWS_WITH(Rubric::from_specs({{"random_reward", 1.0, {{"rate", "1.5"}}}}),
                    Catch::Contains("args.rate must be in [0, 1], got 1.5"));
  CHECK_THROWS_WITH(Rubric::from_specs({{"random_reward", 1.0, {{"p", "0.5"}}}}), Catch::Contains("unknown argument 'p'"));
}
