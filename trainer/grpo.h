// The GRPO loop (`rlvr train`): one step is a screenful of named, timed phases: sample prompts, generate
// G per prompt, score (rubric), advantages, reference log-probs (only when kl_coef != 0), update,
// metrics, checkpoint. DAPO dynamic sampling, overlong filtering and every loss variant come from the
// config; the math lives in advantages.h / policy_loss.h / optimizer.h.
#pragma once
#include <string>

#include "trainer/config.h"

namespace rlvr::trainer {

struct TrainResult {
  int64_t steps_done = 0;
  std::string last_checkpoint;
  std::map<std::string, double> last_metrics;
  std::map<std::string, double> last_eval;
  bool reached_accuracy = false;  // stopped before train.steps because an eval reached train.stop_at_accuracy
};

// train.stop_at_accuracy against one periodic eval's metrics (eval/mean@<samples>): true when training should stop.
bool eval_reached_accuracy(const std::map<std::string, double>& eval, double stop_at_accuracy, int32_t samples);

// resume: "" = fresh; "latest" or a checkpoint directory. Throws Error on failure and on a stop signal
// (after writing a checkpoint; exit code 130).
TrainResult run_grpo(const Config& cfg, const std::string& resume = "");

}  // namespace rlvr::trainer
