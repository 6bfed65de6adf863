// Reward functions registered by name and the Rubric that combines them from YAML (`rewards:` list of
// RewardSpec {name, weight, args}). Built-ins: math_accuracy, format, tag_count, soft_overlong, cosine,
// repetition, random_reward (see `rlvr verify --list-rewards` / docs/rewards.md). Scoring runs on a thread pool and
// never throws on completion text; configuration errors throw ConfigError naming the function and key.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "rewards/reward_spec.h"
#include "rewards/verifier.h"

namespace rlvr::rewards {

// One completion to score.
struct CompletionInput {
  std::string_view completion;  // model output (after the prompt)
  std::string_view reference;   // the gold answer
  bool truncated = false;       // generation hit max_tokens
  int64_t num_tokens = 0;       // completion length in tokens
  int64_t max_tokens = 0;       // generation budget (0: unknown)
  // The record's task fields, when it has any: a countdown record ({"task": "countdown", "numbers": [...],
  // "target": n}) is graded by countdown's exact checker (the answer must be an expression over the numbers
  // that equals the target), not by comparing the answer with the reference; nullptr = a reference answer.
  const nlohmann::json* extra = nullptr;
};

// Grades one completion of a record: a countdown record (see CompletionInput::extra) by countdown's exact
// expression checker, any other by verify() against the reference. Training (the rubric), evaluation and
// distillation all grade through this. Never throws.
VerifyResult verify_completion(std::string_view completion, std::string_view reference, const nlohmann::json* extra,
                               const VerifyOptions& opt = {});

// Verification shared by the functions of one completion (computed at most once per distinct options).
class VerifyCache {
 public:
  explicit VerifyCache(const CompletionInput& in) : in_(in) { done_.reserve(4); }
  const VerifyResult& get(const VerifyOptions& opt);

 private:
  const CompletionInput& in_;
  std::vector<std::pair<VerifyOptions, VerifyResult>> done_;
  VerifyResult extra_;
};

class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  virtual double score(const CompletionInput& in, VerifyCache& vc) const = 0;
  // The verdict this function reports (only accuracy functions have one).
  virtual bool has_verdict() const { return false; }
  virtual Verdict verdict(const CompletionInput& in, VerifyCache& vc) const { return Verdict::ungradable; }
};

// A factory gets the function's args (scalars as strings) and throws ConfigError on a bad or unknown key.
using RewardFactory = std::function<std::unique_ptr<RewardFunction>(const StringMap& args)>;

struct RewardInfo {
  std::string name, description, args;  // args: "key=default (meaning), ..."
};

// Registers a function (built-ins are registered on first use). Re-registering a name replaces it.
void register_reward(const RewardInfo& info, RewardFactory factory);
std::vector<RewardInfo> known_rewards();

// Builds one function; unknown name -> ConfigError listing the known names.
std::unique_ptr<RewardFunction> make_reward(const std::string& name, const StringMap& args);

class Rubric {
 public:
  struct Score {
    double total = 0;                 // sum of weight * value
    std::vector<double> per_function; // unweighted values, in spec order
    Verdict verdict = Verdict::ungradable;  // from the first accuracy function; ungradable if none
  };

  static Rubric from_specs(const std::vector<RewardSpec>& specs);
  std::vector<std::string> names() const;
  std::vector<double> weights() const;
  Score score_one(const CompletionInput& in) const;
  // threads <= 0: one per core. on_scored(n): n more completions are scored (called from the worker threads;
  // progress displays).
  std::vector<Score> score(const std::vector<CompletionInput>& inputs, int threads,
                           const std::function<void(size_t)>& on_scored = {}) const;

 private:
  struct Entry {
    std::string name;
    double weight;
    std::shared_ptr<const RewardFunction> fn;
  };
  std::vector<Entry> entries_;
};

// Argument helpers for factories (ConfigError names "<function>.args.<key>").
struct ArgReader {
  std::string fn;
  const StringMap& args;
  std::vector<std::string> used;
  double num(const std::string& key, double def);
  int64_t integer(const std::string& key, int64_t def);
  std::string str(const std::string& key, const std::string& def, const std::vector<std::string>& allowed = {});
  bool boolean(const std::string& key, bool def);
  void finish() const;  // unknown keys -> ConfigError with the known ones
};

// A uniform draw in [0, 1) that depends only on its arguments (the `random_reward` control's coin).
double random_unit(uint64_t seed, std::string_view reference, std::string_view completion);

// VerifyOptions from accuracy-function args (float_rounding, extraction: lenient|strict, boxed_first...).
VerifyOptions verify_options_from_args(ArgReader& a);

}  // namespace rlvr::rewards
