#include "recipes/distill.h"

#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "rollout/engine.h"

namespace rlvr::recipes {

using trainer::grade;
using trainer::Policy;
using trainer::render_prompt;

DistillReport distill(const Policy& teacher, const data::Dataset& problems, const DataConfig& data_cfg,
                      const DistillOptions& opts, const std::string& out_path) {
  RLVR_CHECK(!problems.empty(), "distill: no problems");
  const int k = opts.gen.samples;
  std::vector<std::vector<int64_t>> prompt_ids;
  for (const auto& r : problems)
    prompt_ids.push_back(teacher.tokenizer.encode(render_prompt(data_cfg, teacher.chat_template, r.prompt)));
  rollout::RolloutOptions ro;
  ro.max_batch_seqs = opts.gen.max_batch_seqs;
  ro.seed = opts.gen.seed;
  const auto& tok = teacher.tokenizer;
  ro.detokenize = [&tok](const std::vector<int64_t>& ids) { return tok.decode(ids, true); };
  rollout::RolloutEngine engine(teacher.model, ro);
  auto sp = opts.gen.sampling;
  if (sp.eos_ids.empty()) sp.eos_ids = teacher.eos_ids;
  teacher.model->module().eval();
  auto comps = engine.generate(prompt_ids, sp, k);
  DistillReport rep;
  rep.problems = problems.size();
  std::string out;
  for (size_t i = 0; i < problems.size(); ++i) {
    std::set<std::string> seen;
    int kept_here = 0;
    for (int j = 0; j < k; ++j) {
      const auto& c = comps[i * k + j];
      ++rep.generated;
      // Truncated completions never count, even when an answer was already written.
      if (c.finish != rollout::FinishReason::stop && !sp.eos_ids.empty()) continue;
      if (!grade(c.text, problems[i]).correct) continue;
      ++rep.correct;
      if (opts.max_per_problem > 0 && kept_here >= opts.max_per_problem) continue;
      if (!seen.insert(c.text).second) continue;
      ++kept_here;
      ++rep.kept;
      nlohmann::json line = {{"id", problems[i].id + "-s" + std::to_string(j)},
                             {"problem", problems[i].prompt},
                             {"answer", problems[i].reference},
                             {"solution", c.text}};
      if (problems[i].extra.is_object())
        for (auto& [key, v] : problems[i].extra.items())
          if (!line.contains(key)) line[key] = v;
      out += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    rep.problems_with_one += kept_here > 0;
  }
  write_file_atomic(out_path, out);
  return rep;
}

}  // namespace rlvr::recipes
