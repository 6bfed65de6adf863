// Checkpoints: <output_dir>/checkpoints/step_<N>/ holds an HF directory (config.json, safetensors,
// tokenizer files) that transformers and vLLM load as it is, plus trainer_state/ (optimizer, schedule,
// step, data cursor, resolved config) for resume. Written under a temporary name and renamed, so a crash
// never leaves a half checkpoint (a failed write, such as a full disk, removes the temporary and leaves the
// earlier checkpoints as they were); only the last K are kept, each pruned by a rename first so that a kill
// mid-delete leaves debris that clean_run_debris() recognises rather than a half checkpoint.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/optimizer.h"
#include "trainer/policy.h"

namespace rlvr::trainer {

struct TrainerState {
  int64_t step = 0;               // training steps completed
  nlohmann::json data_cursor;     // data::cursor_to_json
  nlohmann::json extra;           // loop-specific (e.g. consecutive non-finite steps)
  nlohmann::json prompt_history;  // data::PromptHistory::to_json (GRPO); null = none. Its own file, prompt_history.json
};

// Writes step_<step>/ under `checkpoints_dir`, then deletes all but the newest `keep_last`.
// Returns the checkpoint directory.
std::filesystem::path save_checkpoint(const std::filesystem::path& checkpoints_dir, const Policy& policy,
                                      const TrainOptimizer* opt, const TrainerState& state,
                                      const std::string& resolved_config_yaml, int keep_last);

// Complete checkpoints (step_<N> with trainer_state/state.json) under `checkpoints_dir`, ascending by step.
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& checkpoints_dir);

// Removes what killed runs leave in a run directory: temporary checkpoint directories and files
// ("<name>.tmp.<pid>", a full model copy each), checkpoints caught mid-prune ("<name>.old.<pid>") and step_<N>
// directories without trainer_state/state.json, when the pid is not a live process on this host.
// Returns the removed paths.
std::vector<std::filesystem::path> clean_run_debris(const std::filesystem::path& run_dir);

// "latest" (or "") -> the newest step_<N> under checkpoints_dir; otherwise a checkpoint directory.
// Throws ConfigError when nothing is found.
std::filesystem::path resolve_resume(const std::string& what, const std::filesystem::path& checkpoints_dir);

// Reads trainer_state/state.json and, when `opt` is given, the optimizer state.
TrainerState load_trainer_state(const std::filesystem::path& ckpt_dir, TrainOptimizer* opt);

}  // namespace rlvr::trainer
