// The shared shape of `rlvr train` and `rlvr sft`: --config, --resume [DIR|latest], overrides, then a loop.
#pragma once
#include <string>

#include "cli/commands.h"
#include "trainer/config.h"
#include "trainer/grpo.h"

namespace rlvr::cli {

using TrainingLoop = trainer::TrainResult (*)(const Config&, const std::string& resume);

void add_training_command(CLI::App& app, Action& run, const char* name, const char* help, TrainingLoop loop);

}  // namespace rlvr::cli
