// `rlvr ablate -c ablation.yaml [--parallel N] [key=value ...]`: a reward ablation (arms x seeds, controls,
// held-out evaluation, report with confidence intervals); `rlvr ablate --report DIR` rewrites the report of an
// ablation directory from what has finished. Flags -> AblationConfig -> recipes::run_ablation.
#include <unistd.h>

#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/log.h"
#include "recipes/ablate.h"
#include "recipes/ablate_report.h"

namespace rlvr::cli {

void add_ablate(CLI::App& app, Action& run) {
  struct Opts {
    std::string config, report_dir, out;
    int parallel = 0;
    double progress_s = 10;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "ablate", "reward ablation: arms x seeds of GRPO runs, built-in controls, held-out accuracy with confidence intervals");
  sub->add_option("--config,-c", o->config, "ablation YAML (see configs/ablation_quickstart.yaml, docs/ablate.md)");
  sub->add_option("--parallel,-j", o->parallel, "runs at once on this machine (default schedule.parallel); threads are split")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--out", o->out, "output directory (default output_dir of the file, else runs/<name>)");
  sub->add_option("--report", o->report_dir, "only (re)write report.md, report.json and plots/ of an ablation directory");
  sub->add_option("--progress-every", o->progress_s, "seconds between console progress lines (default 10)")
      ->check(CLI::PositiveNumber);
  sub->add_option("overrides", o->overrides,
                  "key=value: ablation keys (eval.samples=8, seeds=[1,2], schedule.parallel=2) or training keys for "
                  "every arm (train.steps=20)");
  sub->callback([&run, o] {
    run = [o] {
      if (!o->report_dir.empty()) {
        RLVR_CONFIG_CHECK(o->config.empty() && o->overrides.empty(),
                          "rlvr ablate --report DIR takes no config or overrides (it reads DIR/plan.json)");
        auto r = recipes::write_report(o->report_dir);
        log::info("report written: {}/report.md, report.json ({} arms, {} warning(s))", o->report_dir, r["arms"].size(),
                  r["warnings"].size());
        return 0;
      }
      RLVR_CONFIG_CHECK(!o->config.empty(), "rlvr ablate: give the ablation file (-c ablation.yaml) or --report DIR");
      auto ovs = o->overrides;
      if (!o->out.empty()) ovs.push_back("output_dir=" + o->out);
      auto ab = recipes::load_ablation(o->config, ovs);
      recipes::AblateRunOptions ro;
      char buf[4096];
      ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
      RLVR_CHECK(n > 0, "rlvr ablate: cannot resolve /proc/self/exe");
      ro.exe = std::string(buf, static_cast<size_t>(n));
      ro.parallel = o->parallel;
      ro.progress_every_s = o->progress_s;
      return recipes::run_ablation(ab, ro);
    };
  });
}

}  // namespace rlvr::cli
