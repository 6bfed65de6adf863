// `rlvr train --config X.yaml [--resume [DIR|latest]] [section.key=value ...]`: GRPO from a YAML config.
#include <filesystem>

#include "cli/commands.h"
#include "common/log.h"
#include "trainer/config.h"
#include "trainer/grpo.h"

namespace rlvr::cli {

void add_train(CLI::App& app, Action& run) {
  struct Opts {
    std::string config, resume;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("train", "GRPO training from a YAML config (see configs/)");
  sub->add_option("--config,-c", o->config, "YAML config (empty: the built-in CPU default)");
  sub->add_option("--resume", o->resume, "continue from a checkpoint directory, or 'latest' in the run directory")
      ->expected(0, 1)
      ->default_str("latest");
  sub->add_option("overrides", o->overrides, "section.key=value overrides, applied in order");
  sub->callback([&run, o, sub] {
    run = [o, sub] {
      // `--resume section.key=v` : the optional value swallowed an override; resume the latest checkpoint.
      if (o->resume.find('=') != std::string::npos && !std::filesystem::exists(o->resume)) {
        o->overrides.insert(o->overrides.begin(), o->resume);
        o->resume = "latest";
      }
      std::string resume = sub->count("--resume") ? (o->resume.empty() ? "latest" : o->resume) : "";
      Config c = load_config(o->config, o->overrides);
      auto r = trainer::run_grpo(c, resume);
      log::info("training done: {} steps; last checkpoint {}", r.steps_done, r.last_checkpoint);
      return 0;
    };
  });
}

}  // namespace rlvr::cli
