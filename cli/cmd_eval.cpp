// `rlvr eval`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_eval(CLI::App& app, Action& run) { add_not_built(app, run, "eval", "mean@k, pass@k, maj@k evaluation", "issue 8"); }

}  // namespace rlvr::cli
