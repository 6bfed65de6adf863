// `rlvr logprobs`: not built yet; replaced by the real command when its issue lands.
#include "cli/commands.h"

namespace rlvr::cli {

void add_logprobs(CLI::App& app, Action& run) { add_not_built(app, run, "logprobs", "token log-probs of texts", "issue 3"); }

}  // namespace rlvr::cli
