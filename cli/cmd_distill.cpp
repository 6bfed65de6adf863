// `rlvr distill`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_distill(CLI::App& app, Action& run) { add_not_built(app, run, "distill", "rejection-sampled distillation data", "issue 8"); }

}  // namespace rlvr::cli
