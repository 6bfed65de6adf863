// Per-prompt history and the selection policies (see selection.h).
#include "data/selection.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "data/rng.h"

namespace rlvr::data {

SelectionPolicy parse_selection_policy(const std::string& name) {
  const auto& names = selection_policy_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<SelectionPolicy>(i);
  throw Error(fmt::format("data.selection must be one of [{}], got '{}'", fmt::join(names, ", "), name));
}

const std::string& selection_policy_name(SelectionPolicy p) { return selection_policy_names().at(static_cast<size_t>(p)); }

void PromptHistory::record(const GroupOutcome& g) {
  RLVR_CHECK(g.size > 0 && g.correct >= 0 && g.correct <= g.size, "group outcome {} of {} correct", g.correct, g.size);
  auto& r = records_[g.prompt];
  ++r.attempts;
  r.samples += g.size;
  r.correct += g.correct;
  r.last_step = g.step;
  r.zero_streak = g.zero_variance() ? r.zero_streak + 1 : 0;
  r.recent.push_back(static_cast<float>(g.correct) / static_cast<float>(g.size));
  if (static_cast<int32_t>(r.recent.size()) > window_) r.recent.erase(r.recent.begin());
}

const PromptRecord* PromptHistory::find(int64_t prompt) const {
  auto it = records_.find(prompt);
  return it == records_.end() ? nullptr : &it->second;
}

double PromptHistory::pass_rate(int64_t prompt) const {
  const auto* r = find(prompt);
  if (!r || r->recent.empty()) return std::nan("");
  double s = 0;
  for (float x : r->recent) s += x;
  return s / static_cast<double>(r->recent.size());
}

nlohmann::json PromptHistory::to_json() const {
  std::vector<int64_t> keys;
  keys.reserve(records_.size());
  for (const auto& [k, _] : records_) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  auto rows = nlohmann::json::array();
  for (auto k : keys) {
    const auto& r = records_.at(k);
    rows.push_back({k, r.attempts, r.samples, r.correct, r.last_step, r.zero_streak, r.recent});
  }
  return {{"window", window_}, {"prompts", rows}};
}

PromptHistory PromptHistory::from_json(const nlohmann::json& j) {
  RLVR_CHECK(j.is_object() && j.contains("window") && j["window"].is_number_integer() && j["window"].get<int64_t>() >= 1 &&
                 j.contains("prompts") && j["prompts"].is_array(),
             "prompt history must be {{\"window\": int >= 1, \"prompts\": [...]}}");
  PromptHistory h(j["window"].get<int32_t>());
  for (size_t i = 0; i < j["prompts"].size(); ++i) {
    const auto& row = j["prompts"][i];
    bool ok = row.is_array() && row.size() == 7 && row[6].is_array();
    for (size_t f = 0; ok && f < 6; ++f) ok = row[f].is_number_integer();
    for (size_t f = 0; ok && f < row[6].size(); ++f) ok = row[6][f].is_number();
    RLVR_CHECK(ok, "prompt history entry {}: expected [index, attempts, samples, correct, last_step, zero_streak, "
                   "[pass rates]], got {}", i, row.dump());
    PromptRecord r;
    const int64_t idx = row[0].get<int64_t>();
    r.attempts = row[1].get<int64_t>();
    r.samples = row[2].get<int64_t>();
    r.correct = row[3].get<int64_t>();
    r.last_step = row[4].get<int64_t>();
    r.zero_streak = row[5].get<int32_t>();
    r.recent = row[6].get<std::vector<float>>();
    RLVR_CHECK(idx >= 0 && r.attempts >= 1 && r.correct >= 0 && r.correct <= r.samples && r.zero_streak >= 0 &&
                   r.zero_streak <= r.attempts && static_cast<int32_t>(r.recent.size()) <= h.window_ &&
                   !h.records_.count(idx),
               "prompt history entry {} is inconsistent: {}", i, row.dump());
    h.records_.emplace(idx, std::move(r));
  }
  return h;
}

double keep_probability(const PromptRecord* rec, const SelectionOptions& o) {
  if (!rec || o.policy == SelectionPolicy::all) return 1.0;
  if (o.policy == SelectionPolicy::skip_zero_variance) return std::pow(o.explore, rec->zero_streak);
  if (rec->recent.empty()) return 1.0;
  double s = 0;
  for (float x : rec->recent) s += x;
  const double rate = s / static_cast<double>(rec->recent.size());
  return rate >= o.band_lo && rate <= o.band_hi ? 1.0 : o.explore;
}

double selection_draw(uint64_t seed, int64_t step, int64_t round, int64_t position, int64_t prompt) {
  uint64_t h = combine_seed({seed, 0x5e1ec7ULL, static_cast<uint64_t>(step), static_cast<uint64_t>(round),
                             static_cast<uint64_t>(position), static_cast<uint64_t>(prompt)});
  return static_cast<double>(h >> 11) * 0x1.0p-53;  // 53 random bits -> [0, 1)
}

Selection select_global_batch(PromptSampler& sampler, const PromptHistory& history, const SelectionOptions& o,
                              int64_t batch, uint64_t seed, int64_t step, int64_t round) {
  RLVR_CHECK(batch >= 1 && o.max_scan >= 1, "selection: batch {} and max_scan {} must be >= 1", batch, o.max_scan);
  Selection s;
  if (o.policy == SelectionPolicy::all) {
    s.prompts = sampler.next_global_batch(batch);
    s.candidates = batch;
    return s;
  }
  std::vector<int64_t> skipped;
  const int64_t limit = batch * o.max_scan;
  while (static_cast<int64_t>(s.prompts.size()) < batch && s.candidates < limit) {
    // One candidate at a time, so the stream advances only by what was examined.
    const int64_t p = sampler.next_global_batch(1).front();
    const double keep = keep_probability(history.find(p), o);
    if (keep >= 1.0 || selection_draw(seed, step, round, s.candidates, p) < keep) s.prompts.push_back(p);
    else skipped.push_back(p);
    ++s.candidates;
  }
  for (size_t i = 0; static_cast<int64_t>(s.prompts.size()) < batch; ++i) {
    s.prompts.push_back(skipped[i]);
    ++s.forced;
  }
  s.skipped = static_cast<int64_t>(skipped.size()) - s.forced;
  return s;
}

}  // namespace rlvr::data
