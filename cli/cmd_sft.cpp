// `rlvr sft`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_sft(CLI::App& app, Action& run) { add_not_built(app, run, "sft", "supervised fine-tuning", "issue 8"); }

}  // namespace rlvr::cli
