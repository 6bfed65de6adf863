#include "trainer/evaluate.h"

#include <chrono>
#include <fstream>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "data/estimators.h"
#include "data/tasks.h"
#include "rewards/verifier.h"
#include "rollout/engine.h"

namespace rlvr::trainer {

Graded grade(const std::string& completion, const data::Record& record) {
  Graded g;
  g.answer = rewards::extract_answer(completion);
  if (record.extra.is_object() && record.extra.value("task", "") == "countdown") {
    g.correct = g.answer && data::check_countdown_record(*g.answer, record).correct();
  } else {
    g.correct = rewards::verify(completion, record.reference).verdict == rewards::Verdict::correct;
  }
  return g;
}

nlohmann::json EvalReport::to_json(const EvalOptions& o) const {
  nlohmann::ordered_json j;
  for (const auto& [k, v] : metrics) j[k] = v;
  j["sampling"] = {{"samples", o.samples},
                   {"temperature", o.sampling.temperature},
                   {"top_p", o.sampling.top_p},
                   {"top_k", o.sampling.top_k},
                   {"min_p", o.sampling.min_p},
                   {"max_new_tokens", o.sampling.max_new_tokens},
                   {"seed", o.seed}};
  return j;
}

EvalReport evaluate(const Policy& policy, const data::Dataset& problems, const DataConfig& data_cfg,
                    const EvalOptions& opts) {
  RLVR_CHECK(!problems.empty(), "evaluation set is empty");
  RLVR_CHECK(opts.samples >= 1, "eval samples must be >= 1, got {}", opts.samples);
  std::vector<std::vector<int64_t>> prompt_ids;
  prompt_ids.reserve(problems.size());
  for (const auto& r : problems)
    prompt_ids.push_back(policy.tokenizer.encode(render_prompt(data_cfg, policy.chat_template, r.prompt)));
  rollout::RolloutOptions ro;
  ro.max_batch_seqs = opts.max_batch_seqs;
  ro.seed = opts.seed;
  const auto& tok = policy.tokenizer;
  ro.detokenize = [&tok](const std::vector<int64_t>& ids) { return tok.decode(ids, /*skip_special=*/true); };
  Progress bar("eval", static_cast<int64_t>(problems.size()) * opts.samples, "completions");
  auto t_gen = std::chrono::steady_clock::now();
  ro.on_progress = [&](int64_t done, int64_t tokens) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_gen).count();
    bar.set(done, fmt::format("{:.0f} tok/s", tokens / std::max(1e-9, s)));
  };
  rollout::RolloutEngine engine(policy.model, ro);
  auto sp = opts.sampling;
  if (sp.eos_ids.empty()) sp.eos_ids = policy.eos_ids;
  bool was_training = policy.model->module().is_training();
  policy.model->module().eval();
  auto completions = engine.generate(prompt_ids, sp, opts.samples);
  if (was_training) policy.model->module().train();
  bar.finish();

  std::ofstream per_sample;
  if (!opts.per_sample_path.empty()) {
    auto p = std::filesystem::path(opts.per_sample_path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    per_sample.open(p);
    RLVR_CHECK(per_sample.good(), "cannot write '{}'", opts.per_sample_path);
  }
  std::vector<std::vector<data::SampleResult>> per_problem(problems.size());
  for (size_t i = 0; i < problems.size(); ++i) {
    std::vector<std::optional<std::string>> answers;
    auto& results = per_problem[i];
    for (int j = 0; j < opts.samples; ++j) {
      const auto& c = completions[i * opts.samples + j];
      auto g = grade(c.text, problems[i]);
      data::SampleResult s;
      s.correct = g.correct;
      s.length = static_cast<int64_t>(c.ids.size());
      s.truncated = c.finish == rollout::FinishReason::length;
      results.push_back(s);
      answers.push_back(g.answer);
      if (per_sample.is_open()) {
        nlohmann::json line = {{"index", i},       {"id", problems[i].id},   {"sample", j},
                               {"text", c.text},   {"answer", g.answer ? nlohmann::json(*g.answer) : nlohmann::json()},
                               {"reference", problems[i].reference},     {"correct", g.correct},
                               {"length", s.length}, {"finish", rollout::to_string(c.finish)}};
        per_sample << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      }
    }
    auto clusters = data::cluster_answers(answers, [](const std::string& a, const std::string& b) {
      return rewards::answers_equivalent(a, b);
    });
    for (int j = 0; j < opts.samples; ++j) results[j].cluster = clusters[j];
  }
  EvalReport rep;
  rep.metrics = data::summarize_eval(per_problem, opts.ks);
  return rep;
}

}  // namespace rlvr::trainer
