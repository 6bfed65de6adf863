// `rlvr train --config X.yaml [--resume [DIR|latest]] [section.key=value ...]`: GRPO from a YAML config,
// and the option handling it shares with `rlvr sft`.
#include <filesystem>

#include "cli/training_command.h"
#include "common/log.h"

namespace rlvr::cli {

void add_training_command(CLI::App& app, Action& run, const char* name, const char* help, TrainingLoop loop) {
  struct Opts {
    std::string config, resume;
    std::vector<std::string> overrides;
    bool overwrite = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(name, help);
  sub->add_option("--config,-c", o->config, "YAML config (empty: the built-in CPU default)");
  sub->add_option("--resume", o->resume, "continue from a checkpoint directory, or 'latest' in the run directory")
      ->expected(0, 1);
  sub->add_flag("--overwrite", o->overwrite,
                "delete an earlier run in the run directory and start afresh (= run.overwrite=true); without it "
                "an existing run directory is refused");
  sub->add_option("overrides", o->overrides, "section.key=value overrides, applied in order");
  sub->callback([&run, o, sub, name, loop] {
    run = [o, sub, name, loop] {
      // `--resume section.key=v`: the optional value swallowed an override; resume the latest checkpoint.
      if (o->resume.find('=') != std::string::npos && !std::filesystem::exists(o->resume)) {
        o->overrides.insert(o->overrides.begin(), o->resume);
        o->resume = "latest";
      }
      std::string resume = sub->count("--resume") ? (o->resume.empty() ? "latest" : o->resume) : "";
      if (o->overwrite) o->overrides.push_back("run.overwrite=true");
      Config c = load_config(o->config, o->overrides);
      auto r = loop(c, resume);
      log::info("{} done: {} steps; last checkpoint {}", name, r.steps_done, r.last_checkpoint);
      return 0;
    };
  });
}

void add_train(CLI::App& app, Action& run) {
  add_training_command(app, run, "train", "GRPO training from a YAML config (see configs/)", &trainer::run_grpo);
}

}  // namespace rlvr::cli
