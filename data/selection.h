// Prompt selection before generation: each prompt's history of groups (attempts, correct completions, the
// streak of groups that were all correct or all wrong, the last step it was seen), and the policies that
// decide from it which prompts of the data stream get generated for:
//   all                 every prompt (the stream as it is)
//   skip_zero_variance  a prompt whose last z groups were all correct or all wrong is kept with probability
//                       explore^z, so skipped prompts still come back now and then (as GRESO does)
//   pass_rate_band      a prompt whose recent pass rate is outside [lo, hi] is kept with probability explore
// Unseen prompts are always kept. Decisions are pure functions of (history, seed, step, round, prompt), so every
// rank holding the same history takes the same decisions, and a resumed run takes the decisions the
// uninterrupted run took. No LibTorch.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/sampler.h"

namespace rlvr::data {

enum class SelectionPolicy { all, skip_zero_variance, pass_rate_band };

// The one name table: validation, parsing and error messages use it.
inline const std::vector<std::string>& selection_policy_names() {
  static const std::vector<std::string> names{"all", "skip_zero_variance", "pass_rate_band"};
  return names;
}
SelectionPolicy parse_selection_policy(const std::string& name);  // Error naming data.selection when unknown
const std::string& selection_policy_name(SelectionPolicy p);

// One group's outcome: `correct` of `size` completions graded correct at training step `step`.
struct GroupOutcome {
  int64_t prompt = 0;
  int32_t correct = 0;
  int32_t size = 0;
  int64_t step = 0;
  bool zero_variance() const { return correct == 0 || correct == size; }
};

struct PromptRecord {
  int64_t attempts = 0;        // groups generated for this prompt
  int64_t samples = 0;         // completions over all its groups
  int64_t correct = 0;         // correct completions over all its groups
  int64_t last_step = -1;      // training step of its latest group
  int32_t zero_streak = 0;     // how many of its most recent groups in a row were all correct or all wrong
  std::vector<float> recent;   // pass rates of its last `window` groups, oldest first
  bool operator==(const PromptRecord&) const = default;
};

class PromptHistory {
 public:
  explicit PromptHistory(int32_t window = 4) : window_(window) {}
  // Outcomes are applied in order (the global group order of a step, which does not depend on the ranks).
  void record(const GroupOutcome& g);
  const PromptRecord* find(int64_t prompt) const;  // nullptr = never generated for
  size_t size() const { return records_.size(); }
  int32_t window() const { return window_; }
  // The recent pass rate: correct / size over the last `window` groups; NaN when unseen.
  double pass_rate(int64_t prompt) const;

  // {"window": w, "prompts": [[index, attempts, samples, correct, last_step, zero_streak, [recent...]], ...]}
  // sorted by index; from_json checks every field and names the bad one.
  nlohmann::json to_json() const;
  static PromptHistory from_json(const nlohmann::json& j);
  bool operator==(const PromptHistory&) const = default;

 private:
  int32_t window_;
  std::unordered_map<int64_t, PromptRecord> records_;
};

struct SelectionOptions {
  SelectionPolicy policy = SelectionPolicy::all;
  double explore = 0.25;  // as data.selection_explore
  double band_lo = 0.1, band_hi = 0.9;
  int32_t max_scan = 4;  // candidates examined per call at most, x the batch size
};

// The probability that `rec` (nullptr = unseen) is generated for under `o`: 1 for unseen prompts and for the
// policy `all`.
double keep_probability(const PromptRecord* rec, const SelectionOptions& o);

// The decision's uniform draw in [0, 1): a hash of (seed, step, round, position in the stream, prompt).
double selection_draw(uint64_t seed, int64_t step, int64_t round, int64_t position, int64_t prompt);

struct Selection {
  std::vector<int64_t> prompts;  // the global batch, in stream order (forced fill-ins last)
  int64_t candidates = 0;        // prompts taken from the stream
  int64_t skipped = 0;           // candidates not generated for
  int64_t forced = 0;            // skipped candidates taken back because the scan limit was reached
};

// The next global batch of `batch` prompts: candidates are taken from `sampler` (advancing its cursor) and
// each kept with keep_probability; after batch * max_scan candidates, the batch is completed with the earliest
// skipped ones. With the policy `all` this is exactly sampler.next_global_batch(batch).
Selection select_global_batch(PromptSampler& sampler, const PromptHistory& history, const SelectionOptions& o,
                              int64_t batch, uint64_t seed, int64_t step, int64_t round);

}  // namespace rlvr::data
