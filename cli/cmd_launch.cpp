// `rlvr launch --nproc N [--master-port P] -- <subcommand args...>`: runs N ranks of this rlvr binary on
// this machine with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), hosts
// their c10d store, prefixes their output with the rank, and stops the job when a rank fails or on Ctrl-C.
// The supervisor itself is rlvr::dist::launch_local_world (trainer/dist/launcher.h).
#include <unistd.h>

#include "cli/commands.h"
#include "common/error.h"
#include "trainer/dist/launcher.h"

namespace rlvr::cli {

void add_launch(CLI::App& app, Action& run) {
  struct Opts {
    int nproc = 1;
    int master_port = 0;
    double grace_s = 10.0;
    double max_time_s = 0;
    bool prefix_all = false;
    std::vector<std::string> command;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "launch",
      "run N data-parallel ranks of an rlvr subcommand on this machine: rlvr launch --nproc 2 -- train -c run.yaml");
  sub->add_option("--nproc,-n", o->nproc, "number of ranks (one per GPU with nccl)")->required()->check(
      CLI::Range(1, 4096));
  sub->add_option("--master-port", o->master_port, "TCP port of the rendezvous store (default: a free port)")
      ->check(CLI::Range(0, 65535));
  sub->add_option("--grace", o->grace_s, "seconds between SIGTERM and SIGKILL when stopping the ranks (default 10)");
  sub->add_option("--max-time", o->max_time_s, "stop the job after this many seconds (0 = no limit)");
  sub->add_flag("--prefix-all", o->prefix_all,
                "prefix rank 0's output too (by default rank 0 writes to the terminal directly)");
  sub->add_option("command", o->command, "the rlvr subcommand and its arguments, after --")->required();
  sub->callback([&run, o] {
    run = [o] {
      RLVR_CONFIG_CHECK(o->command.front() != "launch", "rlvr launch: the command to run cannot be launch itself");
      RLVR_CONFIG_CHECK(o->command.front().rfind("-", 0) != 0,
                        "rlvr launch: expected an rlvr subcommand after --, got '{}'", o->command.front());
      char buf[4096];
      ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
      RLVR_CHECK(n > 0, "rlvr launch: cannot resolve /proc/self/exe");
      dist::LaunchOptions lo;
      lo.nproc = o->nproc;
      lo.exe = std::string(buf, static_cast<size_t>(n));
      lo.args = o->command;
      lo.master_port = o->master_port;
      lo.grace_s = o->grace_s;
      lo.max_time_s = o->max_time_s;
      lo.prefix_rank0 = o->prefix_all;
      auto res = dist::launch_local_world(lo);
      return res.exit_code;
    };
  });
}

}  // namespace rlvr::cli
