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
#include "data/voting.h"
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
  // Multi-path aggregation (data/voting.h): each method reports accuracy, tokens generated, tokens per correct
  // answer and wall time under "agg/<name>/...". Empty = mean@k, pass@k and maj@k only.
  std::vector<data::AggregateMethod> aggregates;
  int32_t confidence_top_k = 20;       // k of the DeepConf token confidence; recorded when a method needs it
  int64_t conf_window = 0;             // tokens per group confidence window; 0 = auto: clamp(max_new_tokens / 8, 8, 2048)
  int64_t conf_tail = 0;               // tokens of the tail confidence; 0 = the window
  int32_t warmup = 0;                  // online methods: warm-up paths per problem that fix the threshold;
                                       // 0 = auto: max(2, samples / 4); must be < samples
  int32_t max_think_tokens = 0;        // thinking budget (budget forcing); 0 = off
};

// rollout.* of the config as sampling parameters (eos_ids stay empty: they come from the tokenizer).
rollout::SamplingParams sampling_from_config(const Config& c);

// The held-out evaluation the training commands run: `samples` per problem, greedy at 1, else the rollout's
// temperature; top_p, top_k, min_p, stop strings, token budget and batch size from the config (one place, so
// that GRPO's, SFT's and the quickstart's evaluations sample alike).
EvalOptions eval_options_from_config(const Config& c, int32_t samples);

struct EvalReport {
  std::map<std::string, double> metrics;  // "mean@k", "pass@1", "pass@k", "maj@k", "response_length/mean", ...
  // Per aggregation method, per problem: the winning answer (nullopt = no vote) and whether it is correct.
  std::map<std::string, std::vector<std::optional<std::string>>> answers;
  std::map<std::string, std::vector<char>> correct;
  nlohmann::json to_json(const EvalOptions& o) const;  // metrics + sampling settings
};

// The window and tail evaluate() uses for the confidence summaries (resolving the 0 = auto defaults).
int64_t resolved_conf_window(const EvalOptions& o);
int64_t resolved_conf_tail(const EvalOptions& o);
int32_t resolved_warmup(const EvalOptions& o);

// Grades one completion against a record: correct or not, and the extracted answer (for voting).
struct Graded {
  bool correct = false;
  std::optional<std::string> answer;
};
Graded grade(const std::string& completion, const data::Record& record);

EvalReport evaluate(const Policy& policy, const data::Dataset& problems, const DataConfig& data_cfg,
                    const EvalOptions& opts);

}  // namespace rlvr::trainer
