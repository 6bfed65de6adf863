// `rlvr config --config F [section.key=value ...]`: prints the resolved config as YAML.
#include <iostream>

#include "cli/commands.h"
#include "trainer/config.h"

namespace rlvr::cli {

void add_config(CLI::App& app, Action& run) {
  struct Opts {
    std::string config;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("config", "print the resolved config (file + overrides + defaults) as YAML");
  sub->add_option("--config,-c", o->config, "YAML config file (empty: defaults)");
  sub->add_option("overrides", o->overrides, "section.key=value overrides, applied in order");
  sub->callback([&run, o] {
    run = [o] {
      Config c = load_config(o->config, o->overrides);
      std::cout << to_yaml(c);
      return 0;
    };
  });
}

}  // namespace rlvr::cli
