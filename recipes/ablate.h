// `rlvr ablate`: a reward ablation as one resumable job. The base stage runs once (optional shared SFT, the
// starting model, its held-out evaluation, the base rate of the random-reward control); then every arm x
// seed is an ordinary `rlvr train` run directory, trained and evaluated by child processes of the rlvr
// binary (a crash of one run does not stop the others), N at a time; then the report (ablate_report.h).
// A second invocation skips finished runs and resumes interrupted ones from their last checkpoint. This file
// plans and schedules; it parses no flags and holds no training code.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "recipes/ablate_config.h"

namespace rlvr::recipes {

struct AblateRunOptions {
  std::string exe;                  // the rlvr binary the children run (normally /proc/self/exe)
  int32_t parallel = 0;             // > 0 overrides schedule.parallel (--parallel N)
  double progress_every_s = 10;     // console progress line at most this often
  double lock_wait_s = 120;         // wait this long for a previous invocation's runs to exit
};

// Runs (or resumes) the whole ablation and writes the report. Returns the exit code: 0 when every run
// finished, 1 when some failed (the report lists them), 130 when interrupted (runs checkpoint first).
int run_ablation(const AblationConfig& ab, const AblateRunOptions& opts);

}  // namespace rlvr::recipes
