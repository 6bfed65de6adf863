// Evaluation estimators (see estimators.h).
#include "data/estimators.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "common/error.h"

namespace rlvr::data {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  RLVR_CHECK(n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n, "pass@k needs 0 <= c <= n, 1 <= k <= n; got n={} c={} k={}",
             n, c, k);
  if (n - c < k) return 1.0;
  double fail = 1.0;  // C(n-c, k) / C(n, k)
  for (int64_t i = n - c + 1; i <= n; ++i) fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - fail;
}

double mean_correct(const std::vector<SampleResult>& s) {
  if (s.empty()) return 0.0;
  int64_t c = 0;
  for (const auto& r : s) c += r.correct;
  return static_cast<double>(c) / static_cast<double>(s.size());
}

double maj_at_k(const std::vector<SampleResult>& s, int64_t k) {
  size_t m = (k <= 0 || k > static_cast<int64_t>(s.size())) ? s.size() : static_cast<size_t>(k);
  std::unordered_map<int64_t, int64_t> votes;
  std::unordered_map<int64_t, size_t> first;
  for (size_t i = 0; i < m; ++i) {
    if (s[i].cluster < 0) continue;
    if (++votes[s[i].cluster] == 1) first[s[i].cluster] = i;
  }
  if (votes.empty()) return 0.0;
  int64_t best = -1;
  for (const auto& [cl, v] : votes) {
    if (best < 0 || v > votes[best] || (v == votes[best] && first[cl] < first[best])) best = cl;
  }
  return s[first[best]].correct ? 1.0 : 0.0;
}

std::vector<int64_t> cluster_answers(const std::vector<std::optional<std::string>>& answers,
                                     const std::function<bool(const std::string&, const std::string&)>& equivalent) {
  std::vector<int64_t> ids(answers.size(), -1);
  std::vector<size_t> reps;  // index of each cluster's first member
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) continue;
    for (size_t c = 0; c < reps.size(); ++c) {
      if (*answers[reps[c]] == *answers[i] || equivalent(*answers[reps[c]], *answers[i])) {
        ids[i] = static_cast<int64_t>(c);
        break;
      }
    }
    if (ids[i] < 0) {
      ids[i] = static_cast<int64_t>(reps.size());
      reps.push_back(i);
    }
  }
  return ids;
}

double mean_length(const std::vector<SampleResult>& s) {
  if (s.empty()) return 0.0;
  double sum = 0;
  for (const auto& r : s) sum += static_cast<double>(r.length);
  return sum / static_cast<double>(s.size());
}

double truncation_rate(const std::vector<SampleResult>& s) {
  if (s.empty()) return 0.0;
  int64_t t = 0;
  for (const auto& r : s) t += r.truncated;
  return static_cast<double>(t) / static_cast<double>(s.size());
}

std::map<std::string, double> summarize_eval(const std::vector<std::vector<SampleResult>>& per_problem,
                                             const std::vector<int64_t>& ks) {
  RLVR_CHECK(!per_problem.empty(), "evaluation summary over zero problems");
  const int64_t n = static_cast<int64_t>(per_problem[0].size());
  RLVR_CHECK(n >= 1, "evaluation summary with zero samples per problem");
  std::set<int64_t> kset = {1, n};
  for (int64_t k : ks)
    if (k >= 1 && k <= n) kset.insert(k);
  std::map<std::string, double> out;
  std::vector<SampleResult> all;
  double mean = 0;
  std::map<int64_t, double> pass, maj;
  for (size_t p = 0; p < per_problem.size(); ++p) {
    const auto& s = per_problem[p];
    RLVR_CHECK(static_cast<int64_t>(s.size()) == n, "problem {} has {} samples, problem 0 has {}", p, s.size(), n);
    int64_t c = 0;
    for (const auto& r : s) c += r.correct;
    mean += static_cast<double>(c) / static_cast<double>(n);
    for (int64_t k : kset) {
      pass[k] += pass_at_k(n, c, k);
      maj[k] += maj_at_k(s, k);
    }
    all.insert(all.end(), s.begin(), s.end());
  }
  const double P = static_cast<double>(per_problem.size());
  out["mean@" + std::to_string(n)] = mean / P;
  for (int64_t k : kset) {
    out["pass@" + std::to_string(k)] = pass[k] / P;
    out["maj@" + std::to_string(k)] = maj[k] / P;
  }
  out["response_length/mean"] = mean_length(all);
  out["truncated_rate"] = truncation_rate(all);
  out["problems"] = P;
  return out;
}

}  // namespace rlvr::data
