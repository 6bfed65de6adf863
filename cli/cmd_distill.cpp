// `rlvr distill --teacher DIR --data F --samples k --out F.jsonl`: rejection sampling into an SFT dataset.
#include "cli/commands.h"
#include "common/log.h"
#include "data/source.h"
#include "trainer/config.h"
#include "recipes/distill.h"
#include "trainer/policy.h"
#include "trainer/run_setup.h"

namespace rlvr::cli {

void add_distill(CLI::App& app, Action& run) {
  struct Opts {
    std::string config, teacher, data, out;
    int samples = 4, keep = 1, max_new_tokens = -1, limit = 0;
    double temperature = 1.0, top_p = 1.0;
    int64_t seed = -1;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("distill", "rejection sampling: keep a teacher's verified-correct completions as SFT data");
  sub->add_option("--config,-c", o->config, "YAML config for defaults (data template, rollout settings)");
  sub->add_option("--teacher", o->teacher, "teacher checkpoint directory (or builtin:<name>)")->required();
  sub->add_option("--data", o->data, "problems: JSONL file or builtin:<task>")->required();
  sub->add_option("--samples,-k", o->samples, "completions generated per problem")->check(CLI::PositiveNumber);
  sub->add_option("--keep", o->keep, "verified completions kept per problem (distinct); 0 = all");
  sub->add_option("--out", o->out, "output JSONL (id, problem, answer, solution)")->required();
  sub->add_option("--max-new-tokens", o->max_new_tokens, "tokens per completion (default rollout.max_new_tokens)");
  sub->add_option("--temperature", o->temperature, "sampling temperature");
  sub->add_option("--top-p", o->top_p, "nucleus sampling");
  sub->add_option("--seed", o->seed, "sampling seed (default run.seed)");
  sub->add_option("--limit", o->limit, "first N problems only");
  sub->add_option("overrides", o->overrides, "section.key=value overrides");
  sub->callback([&run, o] {
    run = [o] {
      Config c = load_config(o->config, o->overrides);
      c.model.path = o->teacher;
      if (o->seed >= 0) c.run.seed = o->seed;
      auto device = trainer::resolve_device(c.run.device);
      auto teacher = trainer::load_policy(c.model, std::filesystem::temp_directory_path() / "rlvr-distill", c.run.seed, device);
      auto so = trainer::source_options(c, /*eval_split=*/false);
      auto ds = data::load_source(o->data, so);
      if (o->limit > 0 && static_cast<int64_t>(ds.size()) > o->limit) ds.resize(o->limit);
      recipes::DistillOptions d;
      d.gen.samples = o->samples;
      d.gen.sampling.temperature = o->temperature;
      d.gen.sampling.top_p = o->top_p;
      d.gen.sampling.max_new_tokens = o->max_new_tokens > 0 ? o->max_new_tokens : c.rollout.max_new_tokens;
      d.gen.sampling.stop = c.rollout.stop;
      d.gen.max_batch_seqs = c.rollout.max_batch_seqs;
      d.gen.seed = c.run.seed;
      d.max_per_problem = o->keep;
      auto r = recipes::distill(teacher, ds, c.data, d, o->out);
      log::info("distill: {} problems x {} samples: {} correct, {} kept ({} problems with at least one) -> {}",
                r.problems, o->samples, r.correct, r.kept, r.problems_with_one, o->out);
      return 0;
    };
  });
}

}  // namespace rlvr::cli
