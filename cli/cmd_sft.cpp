// `rlvr sft --config X.yaml [--resume [DIR|latest]] [section.key=value ...]`: supervised fine-tuning.
#include <filesystem>

#include "cli/commands.h"
#include "common/log.h"
#include "trainer/config.h"
#include "trainer/sft.h"

namespace rlvr::cli {

void add_sft(CLI::App& app, Action& run) {
  struct Opts {
    std::string config, resume;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("sft", "supervised fine-tuning on prompt/response data (loss on responses only)");
  sub->add_option("--config,-c", o->config, "YAML config (same sections as train)");
  sub->add_option("--resume", o->resume, "continue from a checkpoint directory, or 'latest'")->expected(0, 1);
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
      auto r = trainer::run_sft(c, resume);
      log::info("sft done: {} steps; last checkpoint {}", r.steps_done, r.last_checkpoint);
      return 0;
    };
  });
}

}  // namespace rlvr::cli
