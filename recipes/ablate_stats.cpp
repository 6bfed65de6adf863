#include "recipes/ablate_stats.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"

namespace rlvr::recipes {

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::vector<double> per_problem_accuracy(const std::filesystem::path& path) {
  RLVR_CHECK(std::filesystem::exists(path), "per-sample file '{}' does not exist", path.string());
  std::map<int64_t, std::pair<int64_t, int64_t>> counts;  // index -> (correct, samples)
  for_each_line(path, [&](std::string_view line, size_t lineno) {
    if (line.empty()) return;
    auto j = nlohmann::json::parse(line, nullptr, false);
    RLVR_CHECK(!j.is_discarded() && j.is_object() && j.contains("index") && j["index"].is_number_integer() &&
                   j.contains("correct") && j["correct"].is_boolean(),
               "{}:{}: expected a JSON object with integer \"index\" and boolean \"correct\"", path.string(), lineno);
    auto& c = counts[j["index"].get<int64_t>()];
    c.first += j["correct"].get<bool>() ? 1 : 0;
    c.second += 1;
  });
  RLVR_CHECK(!counts.empty(), "per-sample file '{}' is empty", path.string());
  int64_t n = counts.rbegin()->first + 1;
  RLVR_CHECK(counts.begin()->first >= 0 && static_cast<int64_t>(counts.size()) == n,
             "per-sample file '{}': problems 0..{} expected, {} present (truncated file?)", path.string(), n - 1,
             counts.size());
  std::vector<double> acc(n);
  for (auto& [i, c] : counts) acc[i] = double(c.first) / double(c.second);
  return acc;
}

ScoreMatrix paired_differences(const ScoreMatrix& a, const ScoreMatrix& b) {
  RLVR_CHECK(a.size() == b.size(), "paired differences: {} seeds against {}", a.size(), b.size());
  ScoreMatrix d(a.size());
  for (size_t s = 0; s < a.size(); ++s) {
    RLVR_CHECK(a[s].size() == b[s].size(), "paired differences: seed row {} has {} problems against {}", s,
               a[s].size(), b[s].size());
    d[s].resize(a[s].size());
    for (size_t p = 0; p < a[s].size(); ++p) d[s][p] = a[s][p] - b[s][p];
  }
  return d;
}

ScoreMatrix differences_from(const ScoreMatrix& a, const std::vector<double>& before) {
  ScoreMatrix b(a.size(), before);
  return paired_differences(a, b);
}

double matrix_mean(const ScoreMatrix& m) {
  double sum = 0;
  size_t n = 0;
  for (auto& row : m)
    for (double v : row) sum += v, ++n;
  RLVR_CHECK(n > 0, "mean of an empty score matrix");
  return sum / double(n);
}

std::pair<double, double> percentile_interval(std::vector<double> samples, double confidence) {
  RLVR_CHECK(!samples.empty(), "percentile interval of no samples");
  RLVR_CHECK(confidence > 0 && confidence < 1, "confidence must be in (0, 1), got {}", confidence);
  std::sort(samples.begin(), samples.end());
  const double B = double(samples.size());
  // The 1e-9 guards the products against round-off (1000 * 0.025 = 25.000000000000004).
  auto lo = static_cast<int64_t>(std::floor(B * (1 - confidence) / 2 + 1e-9));
  auto hi = static_cast<int64_t>(std::ceil(B * (1 + confidence) / 2 - 1e-9)) - 1;
  lo = std::clamp<int64_t>(lo, 0, int64_t(samples.size()) - 1);
  hi = std::clamp<int64_t>(hi, lo, int64_t(samples.size()) - 1);
  return {samples[lo], samples[hi]};
}

Interval bootstrap_mean_ci(const ScoreMatrix& m, int64_t resamples, double confidence, uint64_t seed) {
  RLVR_CHECK(!m.empty() && !m.front().empty(), "bootstrap of an empty score matrix");
  RLVR_CHECK(resamples >= 1, "bootstrap resamples must be >= 1, got {}", resamples);
  const size_t S = m.size(), P = m.front().size();
  for (auto& row : m) RLVR_CHECK(row.size() == P, "bootstrap: rows of {} and {} problems", P, row.size());
  Interval out;
  out.estimate = matrix_mean(m);
  out.resamples = resamples;
  out.confidence = confidence;
  SplitMix64 rng(seed);
  std::vector<size_t> rows(S), cols(P);
  std::vector<double> means(static_cast<size_t>(resamples));
  for (auto& mean : means) {
    for (auto& r : rows) r = rng.below(S);
    for (auto& c : cols) c = rng.below(P);
    double sum = 0;
    for (size_t r : rows)
      for (size_t c : cols) sum += m[r][c];
    mean = sum / double(S * P);
  }
  std::tie(out.lo, out.hi) = percentile_interval(std::move(means), confidence);
  return out;
}

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::better: return "better than baseline";
    case Verdict::not_distinguishable: return "not distinguishable from baseline";
    case Verdict::worse: return "worse than baseline";
  }
  return "?";
}

const char* verdict_key(Verdict v) {
  switch (v) {
    case Verdict::better: return "better";
    case Verdict::not_distinguishable: return "not_distinguishable";
    case Verdict::worse: return "worse";
  }
  return "?";
}

Verdict verdict_from_interval(const Interval& diff) {
  if (diff.lo > 0) return Verdict::better;
  if (diff.hi < 0) return Verdict::worse;
  return Verdict::not_distinguishable;
}

std::vector<std::string> power_warnings(const PowerInputs& in) {
  std::vector<std::string> w;
  if (in.seeds < in.min_seeds)
    w.push_back(fmt::format(
        "only {} seed(s) per arm (fewer than {}): seed-to-seed variance of training is barely sampled, so the "
        "intervals are optimistic; add seeds before trusting a small difference",
        in.seeds, in.min_seeds));
  if (in.ci_half_width > in.min_effect)
    w.push_back(fmt::format(
        "the widest interval is +/-{:.1f} points, more than the smallest effect of interest ({:.1f} points): a "
        "real difference of that size would often read as 'not distinguishable'; add seeds or held-out problems",
        100 * in.ci_half_width, 100 * in.min_effect));
  if (in.zero_std_frac > in.max_zero_std)
    w.push_back(fmt::format(
        "arm '{}': {:.0f}% of groups had identical rewards (frac_reward_zero_std), which give no gradient; its "
        "runs learn from few prompts, so 'not distinguishable' may mean 'barely trained'",
        in.zero_std_arm, 100 * in.zero_std_frac));
  return w;
}

}  // namespace rlvr::recipes
