#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "common/error.h"

namespace rlvr::cli {

void add_not_built(CLI::App& app, Action& run, const char* name, const char* what, const char* issue) {
  auto* sub = app.add_subcommand(name, fmt::format("{} (not built yet)", what));
  sub->allow_extras();
  sub->callback([&run, name, issue] {
    run = [name, issue] {
      std::cerr << fmt::format("rlvr {}: not built yet (tracked in {}); see README.md, section Status.\n", name, issue);
      return static_cast<int>(ExitCode::usage);
    };
  });
}

}  // namespace rlvr::cli
