// `rlvr eval --model DIR --data F --samples k [sampling flags]`: mean@k, pass@k, maj@k, response length and
// truncation rate; a JSON report and a per-sample JSONL.
#include <iostream>

#include "cli/commands.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "data/source.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/policy.h"
#include "trainer/run_setup.h"

namespace rlvr::cli {

void add_eval(CLI::App& app, Action& run) {
  struct Opts {
    std::string config, model, data, out, per_sample, chat_template, templ;
    int samples = 1, max_new_tokens = -1, top_k = 0, limit = 0, difficulty = -1;
    double temperature = -1, top_p = 1.0, min_p = 0.0;
    int64_t seed = -1;
    std::vector<int64_t> ks;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("eval", "evaluate a checkpoint: mean@k, pass@k (unbiased), maj@k");
  sub->add_option("--config,-c", o->config, "YAML config for defaults (data template, rollout settings)");
  sub->add_option("--model", o->model, "HF checkpoint directory (default: model.path of the config)");
  sub->add_option("--data", o->data, "JSONL file or builtin:<task> (default: the config's eval set)");
  sub->add_option("--samples,-k", o->samples, "samples per problem (k)")->check(CLI::PositiveNumber);
  sub->add_option("--pass-k", o->ks, "extra k values for pass@k / maj@k (k=1 and k=samples always)");
  sub->add_option("--max-new-tokens", o->max_new_tokens, "tokens per completion (default rollout.max_new_tokens)");
  sub->add_option("--temperature", o->temperature, "sampling temperature (default: 0 for k=1, else rollout.temperature)");
  sub->add_option("--top-p", o->top_p, "nucleus sampling; 1.0 = off");
  sub->add_option("--top-k", o->top_k, "top-k sampling; 0 = off");
  sub->add_option("--min-p", o->min_p, "min-p sampling; 0 = off");
  sub->add_option("--seed", o->seed, "sampling seed (default run.seed)");
  sub->add_option("--limit", o->limit, "evaluate the first N problems only");
  sub->add_option("--difficulty", o->difficulty, "builtin tasks: difficulty level (default data.task_difficulty)");
  sub->add_option("--template", o->templ, "prompt template: r1_zero | qwen_math | chat | raw (default data.template)");
  sub->add_option("--chat-template", o->chat_template, "chat template name (default model.chat_template)");
  sub->add_option("--out", o->out, "JSON report path (default: print to stdout)");
  sub->add_option("--per-sample", o->per_sample, "per-sample JSONL path");
  sub->add_option("overrides", o->overrides, "section.key=value overrides");
  sub->callback([&run, o] {
    run = [o] {
      Config c = load_config(o->config, o->overrides);
      if (!o->model.empty()) c.model.path = o->model;
      if (!o->templ.empty()) c.data.templ = o->templ;
      if (!o->chat_template.empty()) c.model.chat_template = o->chat_template;
      if (o->difficulty > 0) c.data.task_difficulty = o->difficulty;
      if (o->seed >= 0) c.run.seed = o->seed;
      validate(c);
      set_progress_enabled(c.logging.progress);
      set_progress_interval(c.logging.progress_every_s);
      auto device = trainer::resolve_device(c.run.device);
      auto scratch = std::filesystem::temp_directory_path() / "rlvr-eval";
      auto policy = trainer::load_policy(c.model, scratch, c.run.seed, device);
      std::string src = o->data.empty() ? data::eval_source(c.data.train, c.data.eval) : o->data;
      if (src.empty()) throw ConfigError("rlvr eval: no evaluation data: pass --data F.jsonl or set data.eval");
      auto so = trainer::source_options(c, /*eval_split=*/true);
      auto ds = data::load_source(src, so);
      if (o->limit > 0 && static_cast<int64_t>(ds.size()) > o->limit) ds.resize(o->limit);
      trainer::EvalOptions eo;
      eo.samples = o->samples;
      eo.ks = o->ks;
      eo.sampling.max_new_tokens = o->max_new_tokens > 0 ? o->max_new_tokens : c.rollout.max_new_tokens;
      eo.sampling.temperature = o->temperature >= 0 ? o->temperature : (o->samples == 1 ? 0.0 : c.rollout.temperature);
      eo.sampling.top_p = o->top_p;
      eo.sampling.top_k = o->top_k;
      eo.sampling.min_p = o->min_p;
      eo.sampling.stop = c.rollout.stop;
      eo.max_batch_seqs = c.rollout.max_batch_seqs;
      eo.seed = c.run.seed;
      eo.per_sample_path = o->per_sample;
      log::info("evaluating {} on {} problems from {}, k = {}", c.model.path, ds.size(), src, eo.samples);
      auto rep = trainer::evaluate(policy, ds, c.data, eo);
      auto j = rep.to_json(eo);
      j["model"] = c.model.path;
      j["data"] = src;
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
