// `rlvr data`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_data(CLI::App& app, Action& run) { add_not_built(app, run, "data", "dataset checks", "issue 8"); }

}  // namespace rlvr::cli
