// `rlvr train`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_train(CLI::App& app, Action& run) { add_not_built(app, run, "train", "GRPO training from a YAML config", "issue 6"); }

}  // namespace rlvr::cli
