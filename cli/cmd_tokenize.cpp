// `rlvr tokenize`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_tokenize(CLI::App& app, Action& run) { add_not_built(app, run, "tokenize", "tokenize JSONL texts", "issue 3"); }

}  // namespace rlvr::cli
