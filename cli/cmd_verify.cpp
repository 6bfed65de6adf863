// `rlvr verify`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_verify(CLI::App& app, Action& run) { add_not_built(app, run, "verify", "math answer verification", "issue 5"); }

}  // namespace rlvr::cli
