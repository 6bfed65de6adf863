// The report of an ablation directory: reads plan.json (written when the ablation starts), the starting
// model's evaluation and every finished run (eval_after.json, its per-sample JSONL, metrics.jsonl), and writes
// report.json, report.md and plots/*.png. Works on a partial ablation (unfinished runs are listed, not
// counted), so `rlvr ablate --report DIR` can be run at any time. No LibTorch.
#pragma once
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace rlvr::recipes {

// Paths inside an ablation directory (shared by the scheduler and the report).
struct AblationLayout {
  std::filesystem::path root;
  std::filesystem::path plan() const { return root / "plan.json"; }
  std::filesystem::path base() const { return root / "base"; }
  std::filesystem::path before_eval() const { return base() / "eval_before.json"; }
  std::filesystem::path before_samples() const { return base() / "eval_before.samples.jsonl"; }
  std::filesystem::path run_dir(const std::string& arm, int64_t seed) const {
    return root / "runs" / arm / ("seed_" + std::to_string(seed));
  }
  std::filesystem::path config(const std::string& arm, int64_t seed) const {
    return root / "configs" / (arm + "_seed" + std::to_string(seed) + ".yaml");
  }
  std::filesystem::path log(const std::string& what) const { return root / "logs" / (what + ".log"); }
  // In a run directory:
  static std::filesystem::path after_eval(const std::filesystem::path& run) { return run / "eval_after.json"; }
  static std::filesystem::path after_samples(const std::filesystem::path& run) { return run / "eval_after.samples.jsonl"; }
  static std::filesystem::path status(const std::filesystem::path& run) { return run / "ablate_run.json"; }
};

// Builds the report object from the directory (throws Error when plan.json or the starting model's
// evaluation is missing: nothing to compare against yet).
nlohmann::ordered_json build_report(const std::filesystem::path& ablation_dir);

// build_report, then report.json, report.md and plots/ (each written atomically). Returns the report.
nlohmann::ordered_json write_report(const std::filesystem::path& ablation_dir);

// The Markdown rendering of a report object (tables, verdicts, warnings).
std::string report_markdown(const nlohmann::ordered_json& report);

}  // namespace rlvr::recipes
