// `rlvr quickstart`: the built-in default, end to end on CPU: evaluate the fresh built-in model, SFT it on
// the built-in task's worked solutions, evaluate, GRPO from that checkpoint, evaluate; then a table,
// <out>/summary.json and <out>/grpo_curve.png (reward and accuracy per step).
#include <chrono>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/plot.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/grpo.h"
#include "trainer/policy.h"
#include "trainer/run_setup.h"
#include "trainer/sft.h"

namespace rlvr::cli {
namespace {

double held_out_accuracy(const Config& c, const std::filesystem::path& scratch) {
  auto device = trainer::resolve_device(c.run.device);
  auto policy = trainer::load_policy(c.model, scratch, c.run.seed, device);
  auto ds = trainer::load_eval_data(c);
  trainer::EvalOptions eo = trainer::eval_options_from_config(c, 1);
  return trainer::evaluate(policy, ds, c.data, eo).metrics.at("mean@1");
}

void plot_run(const std::filesystem::path& metrics, const std::filesystem::path& png) {
  PlotSeries reward{"train reward", {}, {}, 0x1f77b4, false};
  PlotSeries acc{"train accuracy", {}, {}, 0xff7f0e, false};
  PlotSeries ev{"held-out accuracy", {}, {}, 0x2ca02c, true};
  for_each_line(metrics, [&](std::string_view line, size_t) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return;
    double step = j.value("step", 0.0);
    auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : NAN; };
    if (j.contains("reward/mean")) reward.x.push_back(step), reward.y.push_back(num("reward/mean"));
    if (j.contains("accuracy")) acc.x.push_back(step), acc.y.push_back(num("accuracy"));
    if (j.contains("eval/mean@1")) ev.x.push_back(step), ev.y.push_back(num("eval/mean@1"));
  });
  write_line_plot(png, "GRPO on the built-in task", "step", {reward, acc, ev});
}

}  // namespace

void add_quickstart(CLI::App& app, Action& run) {
  struct Opts {
    std::string sft_config = "configs/quickstart_sft.yaml", grpo_config = "configs/quickstart_grpo.yaml";
    std::string out = "runs/quickstart";
    std::vector<std::string> sft_overrides, grpo_overrides;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("quickstart", "the built-in default on CPU: SFT, then GRPO, with held-out accuracy before/after");
  sub->add_option("--sft-config", o->sft_config, "SFT config")->capture_default_str();
  sub->add_option("--grpo-config", o->grpo_config, "GRPO config")->capture_default_str();
  sub->add_option("--out", o->out, "output directory")->capture_default_str();
  sub->add_option("--sft", o->sft_overrides, "section.key=value override of the SFT config (repeatable)");
  sub->add_option("--grpo", o->grpo_overrides, "section.key=value override of the GRPO config (repeatable)");
  sub->callback([&run, o] {
    run = [o] {
      namespace fs = std::filesystem;
      auto t0 = std::chrono::steady_clock::now();
      fs::path out = o->out;
      auto sft_ov = o->sft_overrides;
      sft_ov.push_back("run.output_dir=" + (out / "sft").string());
      sft_ov.push_back("run.overwrite=true");  // the quickstart re-creates its own output directory
      Config sft = load_config(o->sft_config, sft_ov);

      log::info("quickstart 1/5: held-out accuracy of the fresh model ({})", sft.model.path);
      double before = held_out_accuracy(sft, out / "sft");
      log::info("quickstart 2/5: SFT ({} steps)", sft.train.steps);
      auto s = trainer::run_sft(sft);
      log::info("quickstart 3/5: held-out accuracy after SFT");
      Config after_sft = sft;
      after_sft.model.path = s.last_checkpoint;
      double mid = held_out_accuracy(after_sft, out / "sft");

      auto grpo_ov = o->grpo_overrides;
      grpo_ov.push_back("model.path=" + s.last_checkpoint);
      grpo_ov.push_back("run.output_dir=" + (out / "grpo").string());
      grpo_ov.push_back("run.overwrite=true");
      Config grpo = load_config(o->grpo_config, grpo_ov);
      log::info("quickstart 4/5: GRPO ({} steps) from {}", grpo.train.steps, s.last_checkpoint);
      auto g = trainer::run_grpo(grpo);
      log::info("quickstart 5/5: held-out accuracy after GRPO");
      Config after = grpo;
      after.model.path = g.last_checkpoint;
      double end = held_out_accuracy(after, out / "grpo");

      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      nlohmann::ordered_json j;
      j["accuracy_before_sft"] = before;
      j["accuracy_after_sft"] = mid;
      j["accuracy_after_grpo"] = end;
      j["grpo_gain_points"] = 100.0 * (end - mid);
      j["held_out_problems"] = sft.data.task_eval_size;
      j["task"] = sft.data.train;
      j["difficulty"] = sft.data.task_difficulty;
      j["sft_steps"] = sft.train.steps;
      j["grpo_steps"] = grpo.train.steps;
      j["seed"] = sft.run.seed;
      j["seconds"] = secs;
      j["sft_checkpoint"] = s.last_checkpoint;
      j["grpo_checkpoint"] = g.last_checkpoint;
      write_file_atomic(out / "summary.json", j.dump(2) + "\n");
      plot_run(out / "grpo" / "metrics.jsonl", out / "grpo_curve.png");
      std::cout << fmt::format(
          "\nheld-out accuracy ({} problems, greedy)\n"
          "| stage       | accuracy |\n|-------------|----------|\n"
          "| before SFT  | {:>7.1f}% |\n| after SFT   | {:>7.1f}% |\n| after GRPO  | {:>7.1f}% |\n"
          "GRPO gain: {:+.1f} points; total {:.0f} s\nsummary: {}\nplot: {}\n",
          sft.data.task_eval_size, 100 * before, 100 * mid, 100 * end, 100 * (end - mid), secs,
          (out / "summary.json").string(), (out / "grpo_curve.png").string());
      return 0;
    };
  });
}

}  // namespace rlvr::cli
