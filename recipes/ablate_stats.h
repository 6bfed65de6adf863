// The statistics of a reward ablation, as free functions: per-problem accuracy from an eval's per-sample
// JSONL, paired differences between two arms, a two-way (seeds x problems) percentile bootstrap of the mean,
// the plain-words verdict and the power warnings. No I/O beyond reading one JSONL; no LibTorch.
//
// A "score matrix" is [S seeds][P problems] of per-problem accuracy (mean over the k samples of a problem),
// one row per training seed. Two arms are compared on the same seeds (row s of A against row s of the
// baseline, both trained with run.seed = s) and the same held-out problems (column p), so the difference is
// taken cell by cell before resampling: that pairing removes the problem-difficulty and seed variance the
// arms share.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace rlvr::recipes {

using ScoreMatrix = std::vector<std::vector<double>>;  // [S][P]

// SplitMix64 (Steele, Lea, Flood 2014): the bootstrap's resampling stream, fixed by its seed so a report
// regenerated from the same runs gives the same intervals.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n) (n >= 1); the modulo bias is below 2^-40 for the n of an ablation.
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// Per-problem accuracy from `rlvr eval --per-sample` JSONL (one line per sample with "index" and "correct"):
// result[p] = correct samples of problem p / samples of problem p. Problems are 0..max index; a problem
// without a line is an error (a truncated file), as is a line without the two fields.
std::vector<double> per_problem_accuracy(const std::filesystem::path& per_sample_jsonl);

// d[s][p] = a[s][p] - b[s][p]; the shapes must agree (names both in the message otherwise).
ScoreMatrix paired_differences(const ScoreMatrix& a, const ScoreMatrix& b);

// d[s][p] = a[s][p] - before[p]: the gain of each seed's run over the shared starting model.
ScoreMatrix differences_from(const ScoreMatrix& a, const std::vector<double>& before);

// Mean over every cell.
double matrix_mean(const ScoreMatrix& m);

struct Interval {
  double estimate = 0;  // the statistic on the data as observed
  double lo = 0, hi = 0;  // percentile bootstrap interval
  int64_t resamples = 0;
  double confidence = 0.95;
};

// The (lo, hi) percentiles of `samples` for a two-sided interval of level `confidence`: sorted samples,
// lo = the value at index floor(B * (1 - c) / 2), hi = the value at index ceil(B * (1 + c) / 2) - 1
// (B = 1000, c = 0.95: indices 25 and 974, i.e. 25 draws lie strictly outside on each side).
std::pair<double, double> percentile_interval(std::vector<double> samples, double confidence);

// Two-way bootstrap of the mean of m: each resample draws S rows (seeds) with replacement and, independently,
// P columns (problems) with replacement, and takes the mean over the S x P selected cells. Resampling both
// ways keeps the seed-to-seed variance of training in the interval (the dominant one in RL runs), not only the
// finite held-out set's. With S = 1 it is the ordinary problem bootstrap. Deterministic in `seed`.
Interval bootstrap_mean_ci(const ScoreMatrix& m, int64_t resamples, double confidence, uint64_t seed);

enum class Verdict { better, not_distinguishable, worse };
const char* to_string(Verdict v);  // "better than baseline" | "not distinguishable from baseline" | "worse than baseline"
const char* verdict_key(Verdict v);  // "better" | "not_distinguishable" | "worse"

// better when the whole interval of (arm - baseline) lies above zero, worse when it lies below, otherwise
// not distinguishable (an interval touching 0 is not distinguishable).
Verdict verdict_from_interval(const Interval& diff);

// What the report checks before trusting a verdict.
struct PowerInputs {
  int64_t seeds = 0;                 // seeds with finished runs in both arms of a comparison (the fewest)
  int64_t min_seeds = 3;             // fewer than this: seed variance is barely sampled
  double ci_half_width = 0;          // the widest (hi - lo) / 2 among the comparisons, accuracy units
  double min_effect = 0.05;          // the smallest difference the user cares about, accuracy units
  double zero_std_frac = 0;          // the largest mean frac_reward_zero_std of an arm
  std::string zero_std_arm;          // ... and which arm
  double max_zero_std = 0.5;         // above this most groups give no gradient
};
// One line per problem found; empty when the design looks adequate.
std::vector<std::string> power_warnings(const PowerInputs& in);

}  // namespace rlvr::recipes
