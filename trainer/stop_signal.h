// Ctrl-C / SIGTERM: the handler only sets a flag; the loops check it between steps, write a checkpoint
// and exit non-zero with a message. A second signal exits at once.
#pragma once

namespace rlvr::trainer {

void install_stop_handlers();
bool stop_requested();
int stop_signal_number();  // the signal received (0 = none)

}  // namespace rlvr::trainer
