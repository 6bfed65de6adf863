// `rlvr quickstart`: the built-in default, end to end on CPU (recipes/quickstart.h); prints the table.
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "recipes/quickstart.h"

namespace rlvr::cli {

void add_quickstart(CLI::App& app, Action& run) {
  auto o = std::make_shared<recipes::QuickstartOptions>();
  auto* sub = app.add_subcommand("quickstart", "the built-in default on CPU: SFT, then GRPO, with held-out accuracy before/after");
  sub->add_option("--sft-config", o->sft_config, "SFT config")->capture_default_str();
  sub->add_option("--grpo-config", o->grpo_config, "GRPO config")->capture_default_str();
  sub->add_option("--out", o->out, "output directory")->capture_default_str();
  sub->add_option("--sft", o->sft_overrides, "section.key=value override of the SFT config (repeatable)");
  sub->add_option("--grpo", o->grpo_overrides, "section.key=value override of the GRPO config (repeatable)");
  sub->callback([&run, o] {
    run = [o] {
      auto r = recipes::run_quickstart(*o);
      std::cout << fmt::format(
          "\nheld-out accuracy ({} problems, greedy)\n"
          "| stage       | accuracy |\n|-------------|----------|\n"
          "| before SFT  | {:>7.1f}% |\n| after SFT   | {:>7.1f}% |\n| after GRPO  | {:>7.1f}% |\n"
          "GRPO gain: {:+.1f} points; total {:.0f} s\nsummary: {}\nplot: {}\n",
          r.held_out_problems, 100 * r.before, 100 * r.after_sft, 100 * r.after_grpo, 100 * (r.after_grpo - r.after_sft),
          r.seconds, r.summary_path, r.plot_path);
      return 0;
    };
  });
}

}  // namespace rlvr::cli
