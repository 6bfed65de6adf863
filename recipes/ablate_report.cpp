#include "recipes/ablate_report.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "common/error.h"
#include "common/fs.h"
#include "common/plot.h"
#include "recipes/ablate_stats.h"

namespace rlvr::recipes {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

json read_json(const fs::path& p) {
  try {
    return json::parse(read_file(p));
  } catch (const json::exception& e) {
    throw Error(fmt::format("cannot parse '{}': {}", p.string(), e.what()));
  }
}

// One run's training curve (metrics.jsonl lines with a "step" and training keys; eval-only lines skipped).
struct Curve {
  std::map<int64_t, double> reward, accuracy, zero_std;
  double tokens = 0, train_s = 0;
};

Curve read_curve(const fs::path& metrics) {
  Curve c;
  if (!fs::exists(metrics)) return c;
  for_each_line(metrics, [&](std::string_view line, size_t) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("reward/mean")) return;
    int64_t step = j.value("step", int64_t{0});
    auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : NAN; };
    c.reward[step] = num("reward/mean");
    c.accuracy[step] = num("accuracy");
    c.zero_std[step] = num("frac_reward_zero_std");
    if (std::isfinite(num("tokens_generated"))) c.tokens += num("tokens_generated");
    if (std::isfinite(num("time/step"))) c.train_s += num("time/step");
  });
  return c;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / double(n) : NAN;
}

double mean_of(const std::map<int64_t, double>& m) {
  std::vector<double> v;
  for (auto& [k, x] : m) v.push_back(x);
  return mean_of(v);
}

json interval_json(const Interval& iv) {
  return json{{"estimate", iv.estimate}, {"lo", iv.lo}, {"hi", iv.hi}, {"confidence", iv.confidence},
              {"resamples", iv.resamples}};
}

unsigned lighter(unsigned rgb) {
  unsigned r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff;
  r = (r + 2 * 255) / 3, g = (g + 2 * 255) / 3, b = (b + 2 * 255) / 3;
  return (r << 16) | (g << 8) | b;
}

// Mean over seeds per step (solid, named) and the min/max over seeds (light, unnamed): the seed band.
void plot_band(const fs::path& png, const std::string& title, const std::vector<std::string>& arms,
               const std::map<std::string, std::vector<std::map<int64_t, double>>>& curves) {
  static const unsigned colours[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f};
  std::vector<PlotSeries> series;
  for (size_t a = 0; a < arms.size(); ++a) {
    auto it = curves.find(arms[a]);
    if (it == curves.end() || it->second.empty()) continue;
    std::map<int64_t, std::vector<double>> by_step;
    for (auto& run : it->second)
      for (auto& [s, v] : run)
        if (std::isfinite(v)) by_step[s].push_back(v);
    unsigned col = colours[a % 8];
    PlotSeries mean{arms[a], {}, {}, col, false}, lo{"", {}, {}, lighter(col), false}, hi{"", {}, {}, lighter(col), false};
    for (auto& [s, vs] : by_step) {
      mean.x.push_back(double(s)), mean.y.push_back(mean_of(vs));
      lo.x.push_back(double(s)), lo.y.push_back(*std::min_element(vs.begin(), vs.end()));
      hi.x.push_back(double(s)), hi.y.push_back(*std::max_element(vs.begin(), vs.end()));
    }
    series.push_back(lo), series.push_back(hi), series.push_back(mean);
  }
  // The bands first so the means are drawn on top; the legend lists the means only.
  std::stable_partition(series.begin(), series.end(), [](const PlotSeries& s) { return s.name.empty(); });
  if (!series.empty()) write_line_plot(png, title, "step", series);
}

}  // namespace

json build_report(const fs::path& dir) {
  AblationLayout L{dir};
  RLVR_CHECK(fs::exists(L.plan()), "'{}' is not an ablation directory (no plan.json); run rlvr ablate -c FILE first",
             dir.string());
  json plan = read_json(L.plan());
  RLVR_CHECK(fs::exists(L.before_eval()) && fs::exists(L.before_samples()),
             "'{}': the starting model has not been evaluated yet (no {}); nothing to report", dir.string(),
             L.before_eval().string());
  const auto& rc = plan["report"];
  const int64_t B = rc.value("bootstrap", 2000);
  const double conf = rc.value("confidence", 0.95);
  const uint64_t bseed = rc.value("seed", uint64_t{12345});
  const int k = plan["eval"].value("samples", 1);
  const std::string mean_key = "mean@" + std::to_string(k), pass_key = "pass@" + std::to_string(k),
                    maj_key = "maj@" + std::to_string(k);
  const std::string baseline = plan["baseline"];
  std::vector<int64_t> seeds = plan["seeds"].get<std::vector<int64_t>>();

  json before_metrics = read_json(L.before_eval());
  std::vector<double> before = per_problem_accuracy(L.before_samples());

  struct ArmData {
    std::string name;
    std::map<int64_t, std::vector<double>> per_problem;  // seed -> [P]
    json runs = json::array();
  };
  std::vector<ArmData> arms;
  std::map<std::string, std::vector<std::map<int64_t, double>>> reward_curves, acc_curves;
  std::vector<std::string> arm_names;
  json out;
  out["ablation"] = plan["name"];
  out["directory"] = fs::absolute(dir).lexically_normal().string();
  out["baseline"] = baseline;
  out["seeds"] = seeds;
  out["eval"] = plan["eval"];
  out["held_out_problems"] = before.size();
  out["start_model"] = plan["start_model"];
  if (plan.contains("control_rate")) out["control_rate"] = plan["control_rate"];
  out["before"] = {{"mean@k", before_metrics.value(mean_key, NAN)},
                   {"pass@k", before_metrics.value(pass_key, NAN)},
                   {"maj@k", before_metrics.value(maj_key, NAN)}};
  json arms_json = json::array();
  double widest = 0, worst_zero = 0;
  std::string worst_zero_arm;
  int64_t fewest_seeds = int64_t(seeds.size());

  for (auto& arm : plan["arms"]) {
    ArmData a;
    a.name = arm["name"];
    arm_names.push_back(a.name);
    json j;
    j["name"] = a.name;
    j["control"] = arm.value("control", "");
    j["rubric"] = arm["rubric"];
    std::vector<double> after_mean, after_pass, after_maj, final_reward, final_acc, zero_std, tokens, wall;
    for (int64_t s : seeds) {
      fs::path run = L.run_dir(a.name, s);
      json r;
      r["seed"] = s;
      r["dir"] = fs::relative(run, dir).string();
      fs::path st = AblationLayout::status(run);
      json status = fs::exists(st) ? read_json(st) : json{{"status", fs::exists(run) ? "interrupted" : "pending"}};
      r["status"] = status.value("status", "unknown");
      if (status.contains("exit_code")) r["exit_code"] = status["exit_code"];
      if (status.contains("log")) r["log"] = status["log"];
      Curve c = read_curve(run / "metrics.jsonl");
      if (r["status"] == "ok") {
        json ev = read_json(AblationLayout::after_eval(run));
        a.per_problem[s] = per_problem_accuracy(AblationLayout::after_samples(run));
        RLVR_CHECK(a.per_problem[s].size() == before.size(), "{}: {} held-out problems, the starting model had {}",
                   AblationLayout::after_samples(run).string(), a.per_problem[s].size(), before.size());
        r["after"] = {{"mean@k", ev.value(mean_key, NAN)}, {"pass@k", ev.value(pass_key, NAN)},
                      {"maj@k", ev.value(maj_key, NAN)}};
        after_mean.push_back(ev.value(mean_key, NAN));
        after_pass.push_back(ev.value(pass_key, NAN));
        after_maj.push_back(ev.value(maj_key, NAN));
        r["final_reward"] = c.reward.empty() ? NAN : c.reward.rbegin()->second;
        r["final_accuracy"] = c.accuracy.empty() ? NAN : c.accuracy.rbegin()->second;
        r["frac_reward_zero_std"] = mean_of(c.zero_std);
        r["tokens_generated"] = c.tokens;
        double w = c.train_s + status.value("eval_seconds", 0.0);
        r["wall_seconds"] = w;
        final_reward.push_back(r["final_reward"]), final_acc.push_back(r["final_accuracy"]);
        zero_std.push_back(r["frac_reward_zero_std"]), tokens.push_back(c.tokens), wall.push_back(w);
        reward_curves[a.name].push_back(c.reward);
        acc_curves[a.name].push_back(c.accuracy);
      } else if (!c.reward.empty()) {
        r["steps_done"] = c.reward.rbegin()->first;
      }
      j["runs"].push_back(r);
    }
    j["finished_seeds"] = a.per_problem.size();
    j["after"] = {{"mean@k", mean_of(after_mean)}, {"pass@k", mean_of(after_pass)}, {"maj@k", mean_of(after_maj)}};
    j["training"] = {{"final_reward", mean_of(final_reward)},  {"final_accuracy", mean_of(final_acc)},
                     {"frac_reward_zero_std", mean_of(zero_std)}, {"tokens_generated", mean_of(tokens)},
                     {"wall_seconds", mean_of(wall)}};
    if (!a.per_problem.empty()) {
      ScoreMatrix m;
      for (auto& [s, v] : a.per_problem) m.push_back(v);
      auto gain = bootstrap_mean_ci(differences_from(m, before), B, conf, bseed);
      j["gain"] = interval_json(gain);
      double z = mean_of(zero_std);
      if (std::isfinite(z) && z > worst_zero) worst_zero = z, worst_zero_arm = a.name;
    }
    arms_json.push_back(j);
    arms.push_back(std::move(a));
  }

  // Paired comparison with the baseline on the seeds finished in both arms.
  const ArmData* base = nullptr;
  for (auto& a : arms)
    if (a.name == baseline) base = &a;
  for (size_t i = 0; i < arms.size(); ++i) {
    auto& a = arms[i];
    auto& j = arms_json[i];
    if (a.name == baseline) {
      j["verdict"] = "baseline";
      continue;
    }
    ScoreMatrix x, y;
    std::vector<int64_t> common;
    for (auto& [s, v] : a.per_problem) {
      auto it = base->per_problem.find(s);
      if (it == base->per_problem.end()) continue;
      x.push_back(v), y.push_back(it->second), common.push_back(s);
    }
    if (common.empty()) {
      j["verdict"] = "not evaluated (no seed finished in both this arm and the baseline)";
      continue;
    }
    auto diff = bootstrap_mean_ci(paired_differences(x, y), B, conf, bseed);
    auto v = verdict_from_interval(diff);
    j["vs_baseline"] = interval_json(diff);
    j["vs_baseline"]["seeds"] = common;
    j["verdict"] = to_string(v);
    j["verdict_key"] = verdict_key(v);
    widest = std::max(widest, (diff.hi - diff.lo) / 2);
    fewest_seeds = std::min<int64_t>(fewest_seeds, int64_t(common.size()));
  }
  out["arms"] = arms_json;

  PowerInputs pin;
  pin.seeds = fewest_seeds;
  pin.min_seeds = rc.value("min_seeds", 3);
  pin.ci_half_width = widest;
  pin.min_effect = rc.value("min_effect", 0.05);
  pin.zero_std_frac = worst_zero;
  pin.zero_std_arm = worst_zero_arm;
  pin.max_zero_std = rc.value("max_zero_std", 0.5);
  auto warnings = power_warnings(pin);
  int64_t unfinished = 0;
  for (auto& a : arms_json)
    for (auto& r : a["runs"]) unfinished += r["status"] != "ok";
  if (unfinished > 0)
    warnings.insert(warnings.begin(), fmt::format("{} run(s) not finished (see each run's status); the statistics use "
                                                  "the finished ones only", unfinished));
  out["warnings"] = warnings;
  out["report_settings"] = rc;

  out["plots"] = json::array();
  fs::create_directories(dir / "plots");
  if (!reward_curves.empty()) {
    plot_band(dir / "plots" / "train_reward.png", "training reward (mean over seeds; band = min..max)", arm_names,
              reward_curves);
    plot_band(dir / "plots" / "train_accuracy.png", "training accuracy (mean over seeds; band = min..max)", arm_names,
              acc_curves);
    out["plots"] = {"plots/train_reward.png", "plots/train_accuracy.png"};
  }
  return out;
}

std::string report_markdown(const json& r) {
  auto pct = [](const json& v) {
    return v.is_number() && std::isfinite(v.get<double>()) ? fmt::format("{:.1f}", 100 * v.get<double>()) : std::string("-");
  };
  auto pts = [](const json& iv) {
    if (!iv.is_object()) return std::string("-");
    return fmt::format("{:+.1f} [{:+.1f}, {:+.1f}]", 100 * iv["estimate"].get<double>(), 100 * iv["lo"].get<double>(),
                       100 * iv["hi"].get<double>());
  };
  auto num = [](const json& v, const char* f) {
    return v.is_number() && std::isfinite(v.get<double>()) ? fmt::format(fmt::runtime(f), v.get<double>()) : std::string("-");
  };
  const auto& ev = r["eval"];
  int k = ev.value("samples", 1);
  double conf = r["report_settings"].value("confidence", 0.95);
  std::string s;
  s += fmt::format("# Ablation `{}`\n\n", r["ablation"].get<std::string>());
  s += fmt::format("Starting model `{}`; held-out set: {} problems, k = {} samples at temperature {}; seeds [{}]; "
                   "baseline arm `{}`.\n\n",
                   r["start_model"].get<std::string>(), r["held_out_problems"].get<int64_t>(), k,
                   ev.value("temperature", 0.0), fmt::join(r["seeds"].get<std::vector<int64_t>>(), ", "),
                   r["baseline"].get<std::string>());
  s += fmt::format("Before training: mean@{0} {1}%, pass@{0} {2}%, maj@{0} {3}%.\n\n", k, pct(r["before"]["mean@k"]),
                   pct(r["before"]["pass@k"]), pct(r["before"]["maj@k"]));
  s += fmt::format("## Held-out accuracy (%, mean over finished seeds) and {:.0f}% intervals (points)\n\n", 100 * conf);
  s += fmt::format("| arm | seeds | mean@{0} | pass@{0} | maj@{0} | gain over start | vs baseline | verdict |\n", k);
  s += "|---|---:|---:|---:|---:|---|---|---|\n";
  for (auto& a : r["arms"])
    s += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", a["name"].get<std::string>(),
                     a["finished_seeds"].get<int64_t>(), pct(a["after"]["mean@k"]), pct(a["after"]["pass@k"]),
                     pct(a["after"]["maj@k"]), pts(a.contains("gain") ? a["gain"] : json()),
                     pts(a.contains("vs_baseline") ? a["vs_baseline"] : json()), a["verdict"].get<std::string>());
  s += "\nIntervals: paired percentile bootstrap over seeds and held-out problems (per-problem accuracy = the mean "
       "over its k samples; each resample draws seeds and problems with replacement); \"vs baseline\" differences "
       "are taken per (seed, problem) against the baseline arm's run with the same seed.\n\n";
  s += "## Training\n\n| arm | final reward | final accuracy | frac_reward_zero_std (mean) | tokens generated (per run) | wall time (s, per run) |\n";
  s += "|---|---:|---:|---:|---:|---:|\n";
  for (auto& a : r["arms"]) {
    const auto& t = a["training"];
    s += fmt::format("| {} | {} | {} | {} | {} | {} |\n", a["name"].get<std::string>(), num(t["final_reward"], "{:.3f}"),
                     num(t["final_accuracy"], "{:.3f}"), num(t["frac_reward_zero_std"], "{:.2f}"),
                     num(t["tokens_generated"], "{:.0f}"), num(t["wall_seconds"], "{:.0f}"));
  }
  if (!r["plots"].empty()) {
    s += "\n";
    for (auto& p : r["plots"]) s += fmt::format("![{0}]({0})\n", p.get<std::string>());
  }
  s += "\n## Rubrics\n\n";
  for (auto& a : r["arms"]) {
    std::vector<std::string> parts;
    for (auto& f : a["rubric"]) {
      std::string args;
      for (auto it = f["args"].begin(); it != f["args"].end(); ++it)
        args += fmt::format("{}{}={}", args.empty() ? "" : ", ", it.key(), it.value().get<std::string>());
      parts.push_back(fmt::format("{} x {}{}", f["weight"].get<double>(), f["name"].get<std::string>(),
                                  args.empty() ? "" : " (" + args + ")"));
    }
    s += fmt::format("- `{}`: {}\n", a["name"].get<std::string>(), fmt::join(parts, " + "));
  }
  s += "\n## Warnings\n\n";
  if (r["warnings"].empty()) s += "None: enough seeds, intervals narrower than the smallest effect of interest, "
                                  "and most groups give a gradient.\n";
  for (auto& w : r["warnings"]) s += "- " + w.get<std::string>() + "\n";
  s += "\n## Runs\n\n| arm | seed | status | mean@k | directory |\n|---|---:|---|---:|---|\n";
  for (auto& a : r["arms"])
    for (auto& run : a["runs"])
      s += fmt::format("| {} | {} | {} | {} | {} |\n", a["name"].get<std::string>(), run["seed"].get<int64_t>(),
                       run["status"].get<std::string>(), run.contains("after") ? pct(run["after"]["mean@k"]) : "-",
                       run["dir"].get<std::string>());
  return s;
}

json write_report(const fs::path& dir) {
  json r = build_report(dir);
  write_file_atomic(dir / "report.json", r.dump(2) + "\n");
  write_file_atomic(dir / "report.md", report_markdown(r));
  return r;
}

}  // namespace rlvr::recipes
