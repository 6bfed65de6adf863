// rlvr: the command-line entry point. Parses the subcommand, runs it, and turns exceptions into a
// logged message and an exit code (2 for usage and config errors, 1 for runtime failures).
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/host_memory.h"
#include "common/log.h"

int main(int argc, char** argv) {
  using namespace rlvr;
  tune_host_allocator();
  CLI::App app{"rlvr: reinforcement learning from verifiable rewards (GRPO) for language models"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print the rlvr and torch versions, and whether CUDA is usable");
  cli::Action run;
  cli::add_train(app, run);
  cli::add_sft(app, run);
  cli::add_eval(app, run);
  cli::add_generate(app, run);
  cli::add_verify(app, run);
  cli::add_logprobs(app, run);
  cli::add_tokenize(app, run);
  cli::add_distill(app, run);
  cli::add_data(app, run);
  cli::add_launch(app, run);
  cli::add_config(app, run);
  cli::add_quickstart(app, run);
  cli::add_ablate(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ExitCode::usage);
  }
  try {
    if (version) {
      std::cout << cli::version_string() << std::endl;
      return 0;
    }
    if (!run) {
      std::cout << app.help() << std::endl;
      return static_cast<int>(ExitCode::usage);
    }
    return run();
  } catch (const Error& e) {
    log::error("{}", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    // A library's exception (LibTorch appends a C++ stack trace): its first two lines are the message.
    std::string what = e.what();
    auto trace = what.find("Exception raised from");
    if (trace != std::string::npos) what.resize(trace);
    size_t nl = what.find('\n');
    if (nl != std::string::npos) nl = what.find('\n', nl + 1);
    if (nl != std::string::npos) what.resize(nl);
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    log::error("{}", what);
    return static_cast<int>(ExitCode::runtime);
  }
}
