#include "recipes/quickstart.h"

#include <chrono>
#include <filesystem>

#include "common/fs.h"
#include "common/log.h"
#include "common/plot.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/grpo.h"
#include "trainer/policy.h"
#include "trainer/run_setup.h"
#include "trainer/sft.h"

namespace rlvr::recipes {
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

QuickstartResult run_quickstart(const QuickstartOptions& o) {
  namespace fs = std::filesystem;
  auto t0 = std::chrono::steady_clock::now();
  fs::path out = o.out;
  auto sft_ov = o.sft_overrides;
  sft_ov.push_back("run.output_dir=" + (out / "sft").string());
  sft_ov.push_back("run.overwrite=true");  // the quickstart re-creates its own output directory
  Config sft = load_config(o.sft_config, sft_ov);

  log::info("quickstart 1/5: held-out accuracy of the fresh model ({})", sft.model.path);
  double before = held_out_accuracy(sft, out / "sft");
  if (sft.train.stop_at_accuracy > 0)  // validation guarantees train.eval_every > 0 then
    log::info("quickstart 2/5: SFT (at most {} steps; stops at held-out accuracy {})", sft.train.steps,
              sft.train.stop_at_accuracy);
  else
    log::info("quickstart 2/5: SFT ({} steps)", sft.train.steps);
  auto s = trainer::run_sft(sft);
  log::info("quickstart 3/5: held-out accuracy after SFT");
  Config after_sft = sft;
  after_sft.model.path = s.last_checkpoint;
  double mid = held_out_accuracy(after_sft, out / "sft");

  auto grpo_ov = o.grpo_overrides;
  grpo_ov.push_back("model.path=" + s.last_checkpoint);
  grpo_ov.push_back("run.output_dir=" + (out / "grpo").string());
  grpo_ov.push_back("run.overwrite=true");
  Config grpo = load_config(o.grpo_config, grpo_ov);
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
  j["sft_steps"] = s.steps_done;  // fewer than train.steps when train.stop_at_accuracy stopped it
  j["sft_reached_accuracy"] = s.reached_accuracy;  // false: ran all train.steps (stop_at_accuracy off or not reached)
  j["grpo_steps"] = grpo.train.steps;
  if (g.last_metrics.count("tokens_generated_cumulative"))
    j["grpo_tokens_generated"] = g.last_metrics.at("tokens_generated_cumulative");
  j["seed"] = sft.run.seed;
  j["seconds"] = secs;
  j["sft_checkpoint"] = s.last_checkpoint;
  j["grpo_checkpoint"] = g.last_checkpoint;
  write_file_atomic(out / "summary.json", j.dump(2) + "\n");
  plot_run(out / "grpo" / "metrics.jsonl", out / "grpo_curve.png");
  QuickstartResult r;
  r.before = before;
  r.after_sft = mid;
  r.after_grpo = end;
  r.held_out_problems = sft.data.task_eval_size;
  r.seconds = secs;
  r.summary_path = (out / "summary.json").string();
  r.plot_path = (out / "grpo_curve.png").string();
  r.summary = j;
  return r;
}

}  // namespace rlvr::recipes
