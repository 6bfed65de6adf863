// `rlvr sft --config X.yaml [--resume [DIR|latest]] [section.key=value ...]`: supervised fine-tuning.
#include "cli/training_command.h"
#include "trainer/sft.h"

namespace rlvr::cli {

void add_sft(CLI::App& app, Action& run) {
  add_training_command(app, run, "sft", "supervised fine-tuning on prompt/response data (loss on responses only)",
                       &trainer::run_sft);
}

}  // namespace rlvr::cli
