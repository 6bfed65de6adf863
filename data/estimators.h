// Evaluation estimators over sampled completions (pure functions; trainer/ eval and `rlvr eval` call
// them): unbiased pass@k, mean@k, maj@k over answer-equivalence classes, response length, truncation.
// Grading and answer equivalence themselves live in rewards/; this file only counts.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rlvr::data {

// Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), computed as
// 1 - prod_{i=n-c+1}^{n} (1 - k/i) (no large binomials). 1 when n - c < k. Error unless 0 <= c <= n,
// 1 <= k <= n.
double pass_at_k(int64_t n, int64_t c, int64_t k);

// One sampled completion of one problem, as graded.
struct SampleResult {
  bool correct = false;
  int64_t cluster = -1;     // answer-equivalence class within its problem; -1 = no extractable answer
  int64_t length = 0;       // response length (tokens)
  bool truncated = false;   // stopped by the length limit, not by EOS or a stop string
};

// Fraction of correct samples (pass@1 averaged over the samples): mean@k with k = samples.size().
double mean_correct(const std::vector<SampleResult>& samples);

// Majority vote over the first k samples (k = 0: all): the cluster with the most votes wins; samples
// with cluster -1 do not vote; a tie goes to the cluster that appears first. The result is whether the
// first sample of the winning cluster is correct. 0 when no sample has an answer.
double maj_at_k(const std::vector<SampleResult>& samples, int64_t k = 0);

// Groups answers into equivalence classes for maj@k: sample i gets the id of the first earlier cluster
// whose representative (first member) is equivalent, else a new id (0, 1, ...); nullopt answers get -1.
// `equivalent` is called at most (#answers x #clusters) times.
std::vector<int64_t> cluster_answers(const std::vector<std::optional<std::string>>& answers,
                                     const std::function<bool(const std::string&, const std::string&)>& equivalent);

// Aggregates over problems (each with the same number of samples n). Keys:
//   mean@n         average fraction correct;
//   pass@k         unbiased pass@k averaged over problems, for each k in ks with k <= n (k = 1 always);
//   maj@k          maj@k on the first k samples, for each k in ks with k <= n (and k = n);
//   response_length/mean, truncated_rate  over all samples; problems.
// Error when problems have different sample counts or none.
std::map<std::string, double> summarize_eval(const std::vector<std::vector<SampleResult>>& per_problem,
                                             const std::vector<int64_t>& ks = {});

// Mean of lengths, and the fraction truncated, over samples (0 for no samples).
double mean_length(const std::vector<SampleResult>& samples);
double truncation_rate(const std::vector<SampleResult>& samples);

}  // namespace rlvr::data
