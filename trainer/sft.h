// Supervised fine-tuning (`rlvr sft`): prompt/response pairs (a JSONL with a solution or response field,
// a builtin task's worked solutions, or `rlvr distill` output), loss on response tokens only (token-mean
// over the global batch, so micro-batching and ranks do not change the update), the same optimizer,
// checkpoints, metrics and resume as `rlvr train`. train.prompts_per_step counts SEQUENCES here.
#pragma once
#include <string>

#include "trainer/config.h"
#include "trainer/grpo.h"

namespace rlvr::trainer {

TrainResult run_sft(const Config& cfg, const std::string& resume = "");

}  // namespace rlvr::trainer
