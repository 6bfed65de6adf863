// The quickstart pipeline (`rlvr quickstart`): the built-in default, end to end on CPU. Evaluate the fresh built-in
// model, SFT it on the built-in task's worked solutions, evaluate, GRPO from that checkpoint, evaluate; then
// <out>/summary.json and <out>/grpo_curve.png (reward and accuracy per step). No flag parsing here.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace rlvr::recipes {

struct QuickstartOptions {
  std::string sft_config = "configs/quickstart_sft.yaml";
  std::string grpo_config = "configs/quickstart_grpo.yaml";
  std::string out = "runs/quickstart";
  std::vector<std::string> sft_overrides, grpo_overrides;  // section.key=value
};

struct QuickstartResult {
  double before = 0, after_sft = 0, after_grpo = 0;  // held-out greedy accuracy
  int64_t held_out_problems = 0;
  double seconds = 0;
  std::string summary_path, plot_path;
  nlohmann::ordered_json summary;  // what summary.json holds
};

QuickstartResult run_quickstart(const QuickstartOptions& o);

}  // namespace rlvr::recipes
