// rlvr::dist::launch_local_world: starts N ranks of one program on this machine (what `rlvr launch` and
// the multi-process tests use), with torchrun's environment contract, forwards their output, and tears the
// job down when one rank fails or the user interrupts.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace rlvr::dist {

struct LaunchOptions {
  int nproc = 1;
  std::string exe;                  // program to run for every rank (rlvr launch: /proc/self/exe)
  std::vector<std::string> args;    // argv[1..] for every rank
  std::string master_addr = "127.0.0.1";
  int master_port = 0;              // 0: the launcher hosts the store on a free port
  bool host_store = true;           // host the c10d::TCPStore here (sets TORCHELASTIC_USE_AGENT_STORE=True)
  double grace_s = 10.0;            // SIGTERM -> SIGKILL delay when tearing down
  bool prefix_rank0 = false;        // rank 0 inherits the terminal by default; true pipes and prefixes it too
  std::vector<std::pair<std::string, std::string>> env;  // extra environment for every rank
  int store_timeout_s = 300;        // timeout of the hosted store's operations
  double max_time_s = 0;            // > 0: tear the job down after this long (exit code 124); tests use it
};

struct LaunchResult {
  int exit_code = 0;                // 0 when every rank exited 0; else the first failed rank's code
                                    // (128 + signal when it was killed), 130/143 when interrupted
  int failed_rank = -1;             // first rank that exited non-zero, -1 if none
  std::vector<int> rank_status;     // per rank: exit code, or 128 + signal
  int master_port = 0;              // the port used
  bool interrupted = false;         // SIGINT/SIGTERM received and forwarded
  bool timed_out = false;           // max_time_s passed
};

// Each rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK=0, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE (True when host_store), OMP_NUM_THREADS (cores / nproc, unless set), in its
// own process group, stdin from /dev/null, and dies with the launcher (PR_SET_PDEATHSIG). Output lines of
// rank r are written as "[rank r] ..." to the launcher's stdout/stderr (rank 0 unprefixed on the
// terminal unless prefix_rank0). When a rank exits non-zero (or by a signal) the others get SIGTERM,
// then SIGKILL after grace_s; SIGINT/SIGTERM to the launcher are forwarded the same way.
// Throws rlvr::Error when the program cannot be started.
LaunchResult launch_local_world(const LaunchOptions& opts);

// A TCP port that was free a moment ago on 127.0.0.1 (bind to port 0). Racy by nature; prefer
// host_store = true, which binds the store itself.
int pick_free_port();

}  // namespace rlvr::dist
