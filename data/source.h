// Where a dataset comes from: a JSONL path or "builtin:<task>" (generated), and the prompt-length filter.
// This is the entry point the trainer calls with the fields of DataConfig (trainer/config.h).
#pragma once
#include <functional>
#include <string>

#include "common/error.h"  // load_source throws rlvr::ConfigError / rlvr::Error
#include "data/dataset.h"
#include "data/tasks.h"

namespace rlvr::data {

struct SourceOptions {
  LoadOptions load;          // JSONL: field mapping, missing-field policy
  int difficulty = 1;        // builtin: level (data.task_difficulty)
  int64_t count = 0;         // builtin: problems (data.task_train_size / data.task_eval_size)
  uint64_t seed = 0;         // builtin: generation seed (run.seed)
  Split split = Split::train;
};

// Loads a JSONL file, or generates the builtin task's `split`. Typical use:
//   SourceOptions o; o.load.mapping = {cfg.data.prompt_key, cfg.data.answer_key};
//   o.difficulty = cfg.data.task_difficulty; o.seed = cfg.run.seed;
//   o.count = cfg.data.task_train_size;             auto train = load_source(cfg.data.train, o);
//   auto ev = eval_source(cfg.data.train, cfg.data.eval);
//   o.count = cfg.data.task_eval_size; o.split = Split::held_out;
//   Dataset eval = ev.empty() ? Dataset{} : load_source(ev, o);
Dataset load_source(const std::string& source, const SourceOptions& options, LoadReport* report = nullptr);

// The eval source: `eval` when set, else `train` when it is a builtin task (its held-out split), else ""
// (no evaluation set).
std::string eval_source(const std::string& train, const std::string& eval);

// Removes records whose prompt has more than `max_tokens` tokens by `count_tokens` (apply it to the
// rendered prompt); returns how many were dropped and logs a warning naming the count. max_tokens <= 0:
// nothing dropped.
int64_t drop_long_prompts(Dataset& data, const std::function<int64_t(const Record&)>& count_tokens,
                          int64_t max_tokens);

}  // namespace rlvr::data
