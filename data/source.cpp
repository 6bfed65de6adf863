// Dataset sources: files and builtin tasks (see source.h).
#include "data/source.h"

#include <algorithm>

#include "common/error.h"
#include "common/log.h"

namespace rlvr::data {

Dataset load_source(const std::string& source, const SourceOptions& o, LoadReport* report) {
  RLVR_CONFIG_CHECK(!source.empty(), "empty data source (set data.train to a JSONL file or builtin:<task>)");
  std::string task = builtin_task_name(source);
  if (!task.empty()) {
    Dataset d = generate_task(task, o.difficulty, o.count, o.seed, o.split);
    if (report) {
      *report = {};
      report->lines = report->loaded = static_cast<int64_t>(d.size());
    }
    return d;
  }
  RLVR_CONFIG_CHECK(std::filesystem::exists(source), "data file '{}' does not exist (or use builtin:<task>, tasks: [{}])",
                    source, fmt::join(task_names(), ", "));
  return load_jsonl(source, o.load, report);
}

std::string eval_source(const std::string& train, const std::string& eval) {
  if (!eval.empty()) return eval;
  return builtin_task_name(train).empty() ? "" : train;
}

int64_t drop_long_prompts(Dataset& data, const std::function<int64_t(const Record&)>& count_tokens,
                          int64_t max_tokens) {
  if (max_tokens <= 0) return 0;
  size_t before = data.size();
  data.erase(std::remove_if(data.begin(), data.end(), [&](const Record& r) { return count_tokens(r) > max_tokens; }),
             data.end());
  int64_t dropped = static_cast<int64_t>(before - data.size());
  if (dropped > 0)
    log::warn("dropped {} of {} prompts longer than {} tokens (data.max_prompt_tokens)", dropped, before, max_tokens);
  return dropped;
}

}  // namespace rlvr::data
