// `rlvr eval --model DIR --data F --samples k [sampling flags] [--aggregate ...] [--max-think-tokens N,...]`, or
// `rlvr eval --run RUN_DIR` for every checkpoint of a run: mean@k, pass@k, maj@k, confidence-weighted and online
// voting, accuracy against a thinking budget; a JSON report (and per-sample JSONL, a table and a PNG for --run).
// A checkpoint is evaluated with the prompt format it was trained with (its trainer_state/config.yaml) unless the
// command line says otherwise.
#include <algorithm>
#include <iostream>
#include <regex>

#include <fmt/ranges.h>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/plot.h"
#include "data/source.h"
#include "data/voting.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/policy.h"
#include "trainer/run_setup.h"

namespace rlvr::cli {

namespace {

struct Opts {
  std::string config, model, data, out, per_sample, chat_template, templ, aggregate, run_dir, preset;
  int samples = 1, max_new_tokens = -1, top_k = 0, limit = 0, difficulty = -1, warmup = 0, conf_top_k = 20;
  int every = 1;
  int64_t conf_window = 0;
  double temperature = -1, top_p = -1, min_p = 0.0;
  int64_t seed = -1;
  std::vector<int64_t> ks;
  std::vector<int> think_budgets;
  std::vector<std::string> overrides;
  bool samples_given = false;
};

bool overridden(const std::vector<std::string>& ovs, const std::string& key) {
  for (const auto& o : ovs)
    if (o.rfind(key + "=", 0) == 0) return true;
  return false;
}

// The prompt format a checkpoint was trained with: data.template, data.template_string, model.chat_template and
// rollout.stop from <ckpt>/trainer_state/config.yaml, except what the command line sets. Logs what it used.
void apply_checkpoint_format(Config& c, const std::filesystem::path& ckpt, const Opts& o) {
  const auto saved = ckpt / "trainer_state" / "config.yaml";
  if (!std::filesystem::exists(saved)) {
    log::info("prompt format: template={} chat_template={} ({} has no trainer_state/config.yaml; set them with "
              "--template / --chat-template)", c.data.templ, c.model.chat_template, ckpt.string());
    return;
  }
  Config t;
  try {
    t = load_config(saved.string());
  } catch (const Error& e) {
    log::warn("prompt format: cannot read {} ({}); using the command line's", saved.string(), e.what());
    return;
  }
  std::vector<std::string> from_ckpt;
  if (o.templ.empty() && !overridden(o.overrides, "data.template")) {
    c.data.templ = t.data.templ;
    from_ckpt.push_back("template");
  }
  if (!overridden(o.overrides, "data.template_string")) {
    c.data.template_string = t.data.template_string;
    from_ckpt.push_back("template_string");
  }
  if (o.chat_template.empty() && !overridden(o.overrides, "model.chat_template")) {
    c.model.chat_template = t.model.chat_template;
    from_ckpt.push_back("chat_template");
  }
  if (!overridden(o.overrides, "rollout.stop")) {
    c.rollout.stop = t.rollout.stop;
    from_ckpt.push_back("stop");
  }
  log::info("prompt format: template={} template_string='{}' chat_template={} stop=[{}] ({} from {})", c.data.templ,
            c.data.template_string, c.model.chat_template, fmt::join(c.rollout.stop, ", "),
            from_ckpt.empty() ? std::string("none") : fmt::format("{}", fmt::join(from_ckpt, ", ")), saved.string());
}

trainer::EvalOptions eval_options(const Config& c, const Opts& o) {
  trainer::EvalOptions eo;
  eo.samples = o.samples;
  eo.ks = o.ks;
  eo.sampling.max_new_tokens = o.max_new_tokens > 0 ? o.max_new_tokens : c.rollout.max_new_tokens;
  eo.sampling.temperature = o.temperature >= 0 ? o.temperature : (o.samples == 1 ? 0.0 : c.rollout.temperature);
  eo.sampling.top_p = o.top_p > 0 ? o.top_p : 1.0;
  eo.sampling.top_k = o.top_k;
  eo.sampling.min_p = o.min_p;
  eo.sampling.stop = c.rollout.stop;
  eo.max_batch_seqs = c.rollout.max_batch_seqs;
  // --seed changes the samples only: run.seed also generates a builtin task's problems, which stay the same
  eo.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : static_cast<uint64_t>(c.run.seed);
  eo.per_sample_path = o.per_sample;
  eo.aggregates = data::parse_aggregates(o.aggregate);
  eo.confidence_top_k = o.conf_top_k;
  eo.conf_window = o.conf_window;
  eo.warmup = o.warmup;
  return eo;
}

data::Dataset eval_data(const Config& c, const Opts& o, std::string& src) {
  src = o.data.empty() ? data::eval_source(c.data.train, c.data.eval) : o.data;
  if (src.empty()) throw ConfigError("rlvr eval: no evaluation data: pass --data F.jsonl or set data.eval");
  auto ds = data::load_source(src, trainer::source_options(c, /*eval_split=*/true));
  if (o.limit > 0 && static_cast<int64_t>(ds.size()) > o.limit) ds.resize(o.limit);
  return ds;
}

// One evaluation per thinking budget (one with none when no budget is given). Returns the report JSON.
nlohmann::ordered_json evaluate_model(const Config& c, const Opts& o, const data::Dataset& ds, const std::string& src) {
  auto device = trainer::resolve_device(c.run.device);
  auto scratch = std::filesystem::temp_directory_path() / "rlvr-eval";
  auto policy = trainer::load_policy(c.model, scratch, c.run.seed, device);
  auto eo = eval_options(c, o);
  std::vector<int> budgets = o.think_budgets.empty() ? std::vector<int>{0} : o.think_budgets;
  nlohmann::ordered_json j;
  nlohmann::ordered_json by_budget = nlohmann::ordered_json::array();
  for (int b : budgets) {
    eo.max_think_tokens = b;
    log::info("evaluating {} on {} problems from {}, k = {}{}", c.model.path, ds.size(), src, eo.samples,
              b > 0 ? fmt::format(", thinking budget {} tokens", b) : std::string());
    auto rep = trainer::evaluate(policy, ds, c.data, eo);
    auto r = nlohmann::ordered_json::parse(rep.to_json(eo).dump());
    if (budgets.size() == 1) {
      j = r;
    } else {
      by_budget.push_back(r);
    }
  }
  if (budgets.size() > 1) {
    j["by_think_budget"] = by_budget;
    // accuracy against the budget, one line each
    for (const auto& r : by_budget) {
      std::string line = fmt::format("think budget {:>6}: mean@{} {:.3f}", r["max_think_tokens"].get<int>(), eo.samples,
                                     r["mean@" + std::to_string(eo.samples)].get<double>());
      for (const auto& m : eo.aggregates) line += fmt::format("  {} {:.3f}", m.name, r["agg/" + m.name + "/accuracy"].get<double>());
      line += fmt::format("  forced {:.2f}", r["think/forced_rate"].get<double>());
      log::info("{}", line);
    }
  }
  j["model"] = c.model.path;
  j["data"] = src;
  return j;
}

// The checkpoints of a run, oldest first: (step, directory).
std::vector<std::pair<int64_t, std::filesystem::path>> run_checkpoints(const std::filesystem::path& run_dir) {
  const auto dir = run_dir / "checkpoints";
  RLVR_CONFIG_CHECK(std::filesystem::is_directory(dir), "rlvr eval --run: {} has no checkpoints/ directory",
                    run_dir.string());
  std::vector<std::pair<int64_t, std::filesystem::path>> out;
  const std::regex step_re("step_([0-9]{1,12})");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::smatch m;
    const auto name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, step_re) && std::filesystem::exists(e.path() / "config.json"))
      out.emplace_back(std::stoll(m[1].str()), e.path());
  }
  std::sort(out.begin(), out.end());
  RLVR_CONFIG_CHECK(!out.empty(), "rlvr eval --run: no step_<N> checkpoint under {}", dir.string());
  return out;
}

int eval_run(Config base, const Opts& o) {
  auto ckpts = run_checkpoints(o.run_dir);
  std::vector<std::pair<int64_t, std::filesystem::path>> chosen;
  for (size_t i = 0; i < ckpts.size(); ++i)
    if (i % o.every == 0 || i + 1 == ckpts.size()) chosen.push_back(ckpts[i]);
  log::info("evaluating {} of {} checkpoints of {} with one protocol", chosen.size(), ckpts.size(), o.run_dir);
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::vector<std::string> keys;  // accuracy columns, in order
  for (const auto& [step, dir] : chosen) {
    Config c = base;
    c.model.path = dir.string();
    apply_checkpoint_format(c, dir, o);
    validate(c);
    std::string src;
    auto ds = eval_data(c, o, src);
    auto j = evaluate_model(c, o, ds, src);
    j["step"] = step;
    if (keys.empty()) {
      keys.push_back("mean@" + std::to_string(o.samples));
      if (o.samples > 1) {
        keys.push_back("pass@" + std::to_string(o.samples));
        keys.push_back("maj@" + std::to_string(o.samples));
      }
      for (const auto& m : data::parse_aggregates(o.aggregate)) keys.push_back("agg/" + m.name + "/accuracy");
    }
    rows.push_back(j);
  }
  const auto out_dir = std::filesystem::path(o.run_dir) / "eval";
  std::filesystem::create_directories(out_dir);
  // Table (markdown) on stdout and in eval/run_eval.md; JSON; PNG of accuracy against step.
  std::string table = "| step |";
  for (const auto& k : keys) table += " " + k + " |";
  table += "\n|---|";
  for (size_t i = 0; i < keys.size(); ++i) table += "---|";
  table += "\n";
  std::vector<PlotSeries> series(keys.size());
  const unsigned colours[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f};
  for (size_t i = 0; i < keys.size(); ++i) {
    series[i].name = keys[i];
    series[i].rgb = colours[i % 8];
    series[i].markers = true;
  }
  for (const auto& r : rows) {
    table += fmt::format("| {} |", r["step"].get<int64_t>());
    for (size_t i = 0; i < keys.size(); ++i) {
      const double v = r.contains(keys[i]) ? r[keys[i]].get<double>() : std::nan("");
      table += fmt::format(" {:.3f} |", v);
      series[i].x.push_back(static_cast<double>(r["step"].get<int64_t>()));
      series[i].y.push_back(v);
    }
    table += "\n";
  }
  std::cout << table << std::flush;
  write_file_atomic(out_dir / "run_eval.md", table);
  nlohmann::ordered_json all = {{"run", o.run_dir}, {"checkpoints", rows}};
  const auto json_path = o.out.empty() ? out_dir / "run_eval.json" : std::filesystem::path(o.out);
  write_file_atomic(json_path, all.dump(2) + "\n");
  write_line_plot(out_dir / "accuracy_vs_step.png", "held-out accuracy by checkpoint", "step", series);
  log::info("wrote {}, {} and {}", json_path.string(), (out_dir / "run_eval.md").string(),
            (out_dir / "accuracy_vs_step.png").string());
  return 0;
}

// A standard protocol named on the command line (sampling settings and k).
void apply_preset(Opts& o) {
  if (o.preset.empty()) return;
  if (o.preset == "aime") {
    // The DeepSeek-R1 protocol (avg@k at T = 0.6, top-p 0.95), with k = 32 unless -k is given.
    if (!o.samples_given) o.samples = 32;
    if (o.temperature < 0) o.temperature = 0.6;
    if (o.top_p < 0) o.top_p = 0.95;
    if (o.aggregate.empty()) o.aggregate = "maj";
    return;
  }
  throw ConfigError(fmt::format("unknown --preset '{}'; known: aime", o.preset));
}

}  // namespace

void add_eval(CLI::App& app, Action& run) {
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("eval", "evaluate a checkpoint (or every checkpoint of a run): mean@k, pass@k, maj@k, "
                                         "confidence-weighted and online voting, thinking budgets");
  sub->add_option("--config,-c", o->config, "YAML config for defaults (data template, rollout settings)");
  sub->add_option("--model", o->model, "HF checkpoint directory (default: model.path of the config)");
  sub->add_option("--run", o->run_dir, "evaluate every checkpoint of this run directory (see --every)");
  sub->add_option("--every", o->every, "with --run: every n-th checkpoint (the last always)")->check(CLI::PositiveNumber);
  sub->add_option("--data", o->data, "JSONL file or builtin:<task> (default: the config's eval set)");
  auto* k = sub->add_option("--samples,-k", o->samples, "samples per problem (k)")->check(CLI::PositiveNumber);
  // list options take ONE argument (comma-separated), so that the section.key=value overrides after them stay
  // positional
  sub->add_option("--pass-k", o->ks, "extra k values for pass@k / maj@k, comma-separated (k=1 and k=samples always)")
      ->delimiter(',')
      ->allow_extra_args(false);
  sub->add_option("--max-new-tokens", o->max_new_tokens, "tokens per completion (default rollout.max_new_tokens)");
  sub->add_option("--temperature", o->temperature, "sampling temperature (default: 0 for k=1, else rollout.temperature)");
  sub->add_option("--top-p", o->top_p, "nucleus sampling; 1.0 = off (default)");
  sub->add_option("--top-k", o->top_k, "top-k sampling; 0 = off");
  sub->add_option("--min-p", o->min_p, "min-p sampling; 0 = off");
  sub->add_option("--seed", o->seed, "sampling seed (default run.seed); the problems of a builtin task stay those of run.seed");
  sub->add_option("--limit", o->limit, "evaluate the first N problems only");
  sub->add_option("--difficulty", o->difficulty, "builtin tasks: difficulty level (default data.task_difficulty)");
  sub->add_option("--template", o->templ, "prompt template: r1_zero | qwen_math | chat | raw (default: the checkpoint's)");
  sub->add_option("--chat-template", o->chat_template, "chat template name (default: the checkpoint's)");
  sub->add_option("--aggregate", o->aggregate,
                  "comma list of voting methods: maj, conf-<mean|lowest|bottom10|tail>[@eta], short-<m>, "
                  "online-low, online-high (see docs/eval.md)");
  sub->add_option("--warmup", o->warmup, "online methods: warm-up paths per problem (default max(2, k/4))");
  sub->add_option("--conf-window", o->conf_window, "tokens per group-confidence window (default clamp(max_new_tokens/8, 8, 2048))");
  sub->add_option("--conf-top-k", o->conf_top_k, "tokens in the token confidence (default 20, as DeepConf)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--max-think-tokens", o->think_budgets,
                  "thinking budget(s): close <think> after N tokens and let the answer follow; several values "
                  "give accuracy against the budget")
      ->delimiter(',')
      ->allow_extra_args(false);
  sub->add_option("--preset", o->preset, "a standard protocol: aime (k 32, T 0.6, top-p 0.95, maj)");
  sub->add_option("--out", o->out, "JSON report path (default: print to stdout; --run: RUN/eval/run_eval.json)");
  sub->add_option("--per-sample", o->per_sample, "per-sample JSONL path");
  sub->add_option("overrides", o->overrides, "section.key=value overrides");
  sub->callback([&run, o, k] {
    run = [o, k] {
      o->samples_given = k->count() > 0;
      apply_preset(*o);
      for (int b : o->think_budgets) RLVR_CONFIG_CHECK(b >= 1, "--max-think-tokens must be >= 1, got {}", b);
      Config c = load_config(o->config, o->overrides);
      if (!o->templ.empty()) c.data.templ = o->templ;
      if (!o->chat_template.empty()) c.model.chat_template = o->chat_template;
      if (o->difficulty > 0) c.data.task_difficulty = o->difficulty;
      data::parse_aggregates(o->aggregate);  // a bad name fails before a model is loaded
      if (!o->run_dir.empty()) {
        RLVR_CONFIG_CHECK(o->model.empty(), "rlvr eval: give --model or --run, not both");
        return eval_run(c, *o);
      }
      if (!o->model.empty()) c.model.path = o->model;
      if (std::filesystem::is_directory(c.model.path)) apply_checkpoint_format(c, c.model.path, *o);
      validate(c);
      set_progress_enabled(c.logging.progress);
      set_progress_interval(c.logging.progress_every_s);
      std::string src;
      auto ds = eval_data(c, *o, src);
      auto j = evaluate_model(c, *o, ds, src);
      if (o->out.empty()) {
        std::cout << j.dump(2) << std::endl;
      } else {
        write_file_atomic(o->out, j.dump(2) + "\n");
        log::info("report written to {}: {}", o->out, j.dump());
      }
      return 0;
    };
  });
}

}  // namespace rlvr::cli
