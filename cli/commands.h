// The `rlvr` subcommands. Each add_<name> registers a CLI11 subcommand; when it is chosen, its callback
// stores the action to run in `run` (which returns the process exit code). main() runs it inside one
// try/catch that logs the error and maps it to an exit code.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace rlvr::cli {

using Action = std::function<int()>;

void add_train(CLI::App& app, Action& run);
void add_sft(CLI::App& app, Action& run);
void add_eval(CLI::App& app, Action& run);
void add_generate(CLI::App& app, Action& run);
void add_verify(CLI::App& app, Action& run);
void add_logprobs(CLI::App& app, Action& run);
void add_tokenize(CLI::App& app, Action& run);
void add_distill(CLI::App& app, Action& run);
void add_data(CLI::App& app, Action& run);
void add_launch(CLI::App& app, Action& run);
void add_config(CLI::App& app, Action& run);
void add_quickstart(CLI::App& app, Action& run);
void add_ablate(CLI::App& app, Action& run);

// The version banner: rlvr, torch, CUDA usability and device count.
std::string version_string();

}  // namespace rlvr::cli
