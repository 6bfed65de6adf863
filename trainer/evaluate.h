// Evaluation of a policy on a dataset: k samples per problem, graded by the verifier (countdown records by
// exact expression checking), answers clustered by verifier equivalence; mean@k, pass@k (unbiased), maj@k,
// mean response length and truncation rate. Used by `rlvr eval`, by training every train.eval_every steps,
// and by the quickstart.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "rollout/sampler.h"
#include "trainer/policy.h"

namespace rlvr::trainer {

struct EvalOptions {
  int32_t samples = 1;                 // k per problem
  rollout::SamplingParams sampling;    // eos_ids filled from the policy when empty
  int32_t max_batch_seqs = 64;         // completions decoded concurrently
  uint64_t seed = 0;
  std::vector<int64_t> ks;             // extra k for pass@k / maj@k (k = 1 and k = samples always)
  std::string per_sample_path;         // per-sample JSONL ("" = none)
};

struct EvalReport {
  std::map<std::string, double> metrics;  // "mean@k", "pass@1", "pass@k", "maj@k", "response_length/mean", ...
  nlohmann::json to_json(const EvalOptions& o) const;  // metrics + sampling settings
};

// Grades one completion against a record: correct or not, and the extracted answer (for voting).
struct Graded {
  bool correct = false;
  std::optional<std::string> answer;
};
Graded grade(const std::string& completion, const data::Record& record);

EvalReport evaluate(const Policy& policy, const data::Dataset& problems, const DataConfig& data_cfg,
                    const EvalOptions& opts);

}  // namespace rlvr::trainer
