// `rlvr launch`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_launch(CLI::App& app, Action& run) { add_not_built(app, run, "launch", "multi-process launcher", "issue 7"); }

}  // namespace rlvr::cli
