// `rlvr generate`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_generate(CLI::App& app, Action& run) { add_not_built(app, run, "generate", "sample completions", "issue 4"); }

}  // namespace rlvr::cli
