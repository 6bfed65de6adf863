#include "trainer/evaluate.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <unordered_map>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "data/estimators.h"
#include "rewards/rubric.h"
#include "rewards/verifier.h"
#include "rollout/engine.h"

namespace rlvr::trainer {

Graded grade(const std::string& completion, const data::Record& record) {
  Graded g;
  g.answer = rewards::extract_answer(completion);
  g.correct = rewards::verify_completion(completion, record.reference, &record.extra).verdict == rewards::Verdict::correct;
  return g;
}

rollout::SamplingParams sampling_from_config(const Config& c) {
  rollout::SamplingParams sp;
  sp.max_new_tokens = c.rollout.max_new_tokens;
  sp.temperature = c.rollout.temperature;
  sp.top_p = c.rollout.top_p;
  sp.top_k = c.rollout.top_k;
  sp.min_p = c.rollout.min_p;
  sp.stop = c.rollout.stop;
  return sp;
}

EvalOptions eval_options_from_config(const Config& c, int32_t samples) {
  EvalOptions eo;
  eo.samples = samples;
  eo.sampling = sampling_from_config(c);
  if (samples == 1) eo.sampling.temperature = 0.0;
  eo.max_batch_seqs = c.rollout.max_batch_seqs;
  return eo;
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
  if (!o.aggregates.empty()) {
    nlohmann::ordered_json a;
    a["confidence_top_k"] = o.confidence_top_k;
    a["window"] = resolved_conf_window(o);
    a["tail"] = resolved_conf_tail(o);
    a["warmup"] = resolved_warmup(o);
    std::vector<std::string> names;
    for (const auto& m : o.aggregates) names.push_back(m.name);
    a["methods"] = names;
    j["aggregation"] = a;
  }
  if (o.max_think_tokens > 0) j["max_think_tokens"] = o.max_think_tokens;
  return j;
}

int64_t resolved_conf_window(const EvalOptions& o) {
  if (o.conf_window > 0) return o.conf_window;
  return std::clamp<int64_t>(o.sampling.max_new_tokens / 8, 8, 2048);
}
int64_t resolved_conf_tail(const EvalOptions& o) { return o.conf_tail > 0 ? o.conf_tail : resolved_conf_window(o); }
int32_t resolved_warmup(const EvalOptions& o) { return o.warmup > 0 ? o.warmup : std::max(2, o.samples / 4); }

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool needs_confidence(const EvalOptions& o) {
  for (const auto& m : o.aggregates)
    if (m.kind == data::AggregateMethod::Kind::conf || m.kind == data::AggregateMethod::Kind::online) return true;
  return false;
}

// One generation phase and what it cost.
struct Phase {
  std::vector<rollout::Completion> completions;  // [problem i, sample j] at i * G + j
  int64_t tokens = 0;
  double wall_s = 0;
};

Phase run_phase(rollout::RolloutEngine& engine, const std::vector<std::vector<int64_t>>& prompts,
                const rollout::SamplingParams& sp, int G, const rollout::GenerateControl& ctl) {
  Phase ph;
  auto t0 = Clock::now();
  ph.completions = engine.generate(prompts, sp, G, ctl);
  ph.wall_s = seconds_since(t0);
  ph.tokens = engine.last_stats().generated_tokens;
  return ph;
}

// Graded paths of one problem, with their answers and the per-sample results the estimators take.
struct Graded1 {
  std::vector<data::Path> paths;
  std::vector<std::optional<std::string>> answers;  // per path
};

Graded1 grade_paths(const std::vector<const rollout::Completion*>& cs, const data::Record& rec, int64_t window,
                    int64_t tail) {
  Graded1 g;
  for (const auto* c : cs) {
    auto gr = grade(c->text, rec);
    data::Path p;
    p.correct = gr.correct;
    p.tokens = static_cast<int64_t>(c->ids.size());
    p.finished = c->finish == rollout::FinishReason::stop;
    p.stopped = c->finish == rollout::FinishReason::aborted;
    if (!c->confidence.empty()) p.conf = data::trace_confidence(c->confidence, window, tail);
    g.paths.push_back(p);
    g.answers.push_back(p.stopped ? std::nullopt : gr.answer);
  }
  auto clusters = data::cluster_answers(g.answers, [](const std::string& a, const std::string& b) {
    return rewards::answers_equivalent(a, b);
  });
  for (size_t j = 0; j < g.paths.size(); ++j) g.paths[j].cluster = clusters[j];
  return g;
}

std::optional<std::string> winner_answer(const Graded1& g, const data::VoteResult& v) {
  if (v.cluster < 0) return std::nullopt;
  for (size_t j = 0; j < g.paths.size(); ++j)
    if (g.paths[j].cluster == v.cluster) return g.answers[j];
  return std::nullopt;
}

// Accumulates one method's result over problems.
struct MethodTotals {
  double correct = 0;
  int64_t tokens = 0;
  double wall_s = 0;
  int64_t stopped = 0, paths = 0;
  int64_t agree = 0;  // online: problems whose answer equals the offline replay over the full paths
  std::vector<std::optional<std::string>> answers;
  std::vector<char> right;
};

}  // namespace

EvalReport evaluate(const Policy& policy, const data::Dataset& problems, const DataConfig& data_cfg,
                    const EvalOptions& opts) {
  RLVR_CHECK(!problems.empty(), "evaluation set is empty");
  RLVR_CHECK(opts.samples >= 1, "eval samples must be >= 1, got {}", opts.samples);
  const int K = opts.samples;
  bool has_online = false;
  for (const auto& m : opts.aggregates) has_online = has_online || m.kind == data::AggregateMethod::Kind::online;
  const int W = has_online ? resolved_warmup(opts) : 0;
  if (has_online)
    RLVR_CONFIG_CHECK(W >= 1 && W < K, "online voting needs 1 <= warm-up paths < samples, got warm-up {} of {} samples",
                      W, K);
  const int64_t window = resolved_conf_window(opts), tail = resolved_conf_tail(opts);

  std::vector<std::vector<int64_t>> prompt_ids;
  prompt_ids.reserve(problems.size());
  std::string first_prompt;
  for (const auto& r : problems) {
    auto text = render_prompt(data_cfg, policy.chat_template, r.prompt);
    if (first_prompt.empty()) first_prompt = text;
    prompt_ids.push_back(policy.tokenizer.encode(text));
  }
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

  // Every phase draws as one call would (call 0, sample offsets): the warm-up paths of the online methods ARE the
  // first W offline paths, and an online path is the offline path of the same index until it is stopped.
  rollout::GenerateControl base;
  base.call = 0;
  base.confidence_top_k = needs_confidence(opts) ? opts.confidence_top_k : 0;
  if (opts.max_think_tokens > 0) {
    base.think.max_tokens = opts.max_think_tokens;
    base.think.close_ids = tok.encode("\n" + base.think.close + "\n\n");
    auto trimmed = first_prompt;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
    base.think.open_in_prompt = trimmed.size() >= base.think.open.size() &&
                                trimmed.compare(trimmed.size() - base.think.open.size(), base.think.open.size(),
                                                base.think.open) == 0;
  }

  bool was_training = policy.model->module().is_training();
  policy.model->module().eval();
  std::vector<rollout::Completion> completions;  // the offline paths, [i * K + j]
  Phase warm, rest;
  if (has_online) {
    warm = run_phase(engine, prompt_ids, sp, W, base);
    auto ctl = base;
    ctl.sample_offset = W;
    rest = run_phase(engine, prompt_ids, sp, K - W, ctl);
    completions.resize(problems.size() * K);
    for (size_t i = 0; i < problems.size(); ++i) {
      for (int j = 0; j < W; ++j) completions[i * K + j] = std::move(warm.completions[i * W + j]);
      for (int j = W; j < K; ++j) completions[i * K + j] = std::move(rest.completions[i * (K - W) + (j - W)]);
    }
  } else {
    rest = run_phase(engine, prompt_ids, sp, K, base);
    completions = std::move(rest.completions);
  }
  const int64_t offline_tokens = warm.tokens + rest.tokens;
  const double offline_wall = warm.wall_s + rest.wall_s;
  bar.finish();

  std::ofstream per_sample;
  if (!opts.per_sample_path.empty()) {
    auto p = std::filesystem::path(opts.per_sample_path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    per_sample.open(p);
    RLVR_CHECK(per_sample.good(), "cannot write '{}'", opts.per_sample_path);
  }
  std::vector<std::vector<data::SampleResult>> per_problem(problems.size());
  std::vector<Graded1> graded(problems.size());
  double conf_sum[2] = {0, 0}, conf_n[2] = {0, 0};  // mean token confidence of wrong [0] and correct [1] paths
  int64_t forced = 0, think_total = 0, think_n = 0;
  for (size_t i = 0; i < problems.size(); ++i) {
    std::vector<const rollout::Completion*> cs;
    for (int j = 0; j < K; ++j) cs.push_back(&completions[i * K + j]);
    graded[i] = grade_paths(cs, problems[i], window, tail);
    auto& results = per_problem[i];
    for (int j = 0; j < K; ++j) {
      const auto& c = *cs[j];
      const auto& p = graded[i].paths[j];
      data::SampleResult s;
      s.correct = p.correct;
      s.length = p.tokens;
      s.truncated = c.finish == rollout::FinishReason::length;
      s.cluster = p.cluster;
      results.push_back(s);
      if (!c.confidence.empty()) {
        conf_sum[p.correct] += p.conf.mean;
        conf_n[p.correct] += 1;
      }
      forced += c.think_forced;
      if (c.think_tokens >= 0) {
        think_total += c.think_tokens;
        ++think_n;
      }
      if (per_sample.is_open()) {
        const auto& ans = graded[i].answers[j];
        nlohmann::json line = {{"index", i},       {"id", problems[i].id},   {"sample", j},
                               {"text", c.text},   {"answer", ans ? nlohmann::json(*ans) : nlohmann::json()},
                               {"reference", problems[i].reference},     {"correct", p.correct},
                               {"length", s.length}, {"finish", rollout::to_string(c.finish)}};
        if (!c.confidence.empty()) line["confidence"] = {{"mean", p.conf.mean}, {"lowest", p.conf.lowest},
                                                          {"bottom10", p.conf.bottom10}, {"tail", p.conf.tail}};
        if (c.think_tokens >= 0) line["think_tokens"] = c.think_tokens;
        per_sample << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
      }
    }
  }
  EvalReport rep;
  rep.metrics = data::summarize_eval(per_problem, opts.ks);
  if (!opts.aggregates.empty()) {  // totals, not per-problem means: only for a multi-path report (never merged over ranks)
    rep.metrics["tokens"] = static_cast<double>(offline_tokens);
    rep.metrics["wall_s"] = offline_wall;
  }
  if (conf_n[0] + conf_n[1] > 0) {
    if (conf_n[1] > 0) rep.metrics["confidence/correct"] = conf_sum[1] / conf_n[1];
    if (conf_n[0] > 0) rep.metrics["confidence/wrong"] = conf_sum[0] / conf_n[0];
  }
  if (opts.max_think_tokens > 0) {
    rep.metrics["think/forced_rate"] = static_cast<double>(forced) / static_cast<double>(completions.size());
    rep.metrics["think/tokens_mean"] = think_n ? static_cast<double>(think_total) / think_n : 0.0;
  }

  for (const auto& m : opts.aggregates) {
    MethodTotals t;
    t.tokens = offline_tokens;
    t.wall_s = offline_wall;
    std::vector<double> thresholds;
    if (m.kind == data::AggregateMethod::Kind::short_m) t.tokens = 0;
    if (m.kind == data::AggregateMethod::Kind::online) {
      // Thresholds from each problem's warm-up paths, then the remaining K - W paths with early stopping.
      for (size_t i = 0; i < problems.size(); ++i) {
        std::vector<double> lows;
        for (int j = 0; j < W; ++j) lows.push_back(graded[i].paths[j].conf.lowest);
        thresholds.push_back(data::online_threshold(lows, m.eta));
      }
      // Prefix sums per running path, extended token by token (the engine calls stop_if once per token, in order).
      std::unordered_map<int64_t, std::vector<double>> sums;
      auto ctl = base;
      ctl.sample_offset = W;
      ctl.stop_if = [&](const rollout::Completion& c) {
        auto& p = sums[c.prompt_index * K + c.sample_index];
        if (p.empty()) p.push_back(0.0);
        p.push_back(p.back() + static_cast<double>(c.confidence.back()));
        const int64_t n = static_cast<int64_t>(c.confidence.size());
        if (n < window) return false;
        return (p[n] - p[n - window]) / static_cast<double>(window) < thresholds[c.prompt_index];
      };
      auto online = run_phase(engine, prompt_ids, sp, K - W, ctl);
      t.tokens = warm.tokens + online.tokens;
      t.wall_s = warm.wall_s + online.wall_s;
      for (size_t i = 0; i < problems.size(); ++i) {
        std::vector<const rollout::Completion*> cs;
        for (int j = 0; j < W; ++j) cs.push_back(&completions[i * K + j]);
        for (int j = 0; j < K - W; ++j) cs.push_back(&online.completions[i * (K - W) + j]);
        auto g = grade_paths(cs, problems[i], window, tail);
        for (const auto& p : g.paths) t.stopped += p.stopped;
        t.paths += static_cast<int64_t>(g.paths.size());
        auto v = data::threshold_vote(g.paths, thresholds[i]);
        auto replay = data::threshold_vote(graded[i].paths, thresholds[i]);
        auto a = winner_answer(g, v), b = winner_answer(graded[i], replay);
        const bool same = a == b || (a && b && rewards::answers_equivalent(*a, *b));
        t.agree += (same && v.correct == replay.correct);
        t.answers.push_back(a);
        t.right.push_back(v.correct);
        t.correct += v.correct;
      }
    } else {
      for (size_t i = 0; i < problems.size(); ++i) {
        const auto& g = graded[i];
        data::VoteResult v;
        switch (m.kind) {
          case data::AggregateMethod::Kind::maj: v = data::majority_vote(g.paths); break;
          case data::AggregateMethod::Kind::conf: v = data::confidence_vote(g.paths, m.measure, m.eta); break;
          case data::AggregateMethod::Kind::short_m:
            v = data::short_m_vote(g.paths, m.m);
            t.tokens += data::short_m_tokens(g.paths, m.m);
            break;
          case data::AggregateMethod::Kind::online: break;
        }
        t.answers.push_back(winner_answer(g, v));
        t.right.push_back(v.correct);
        t.correct += v.correct;
      }
    }
    const double P = static_cast<double>(problems.size());
    const std::string k = "agg/" + m.name + "/";
    rep.metrics[k + "accuracy"] = t.correct / P;
    rep.metrics[k + "tokens"] = static_cast<double>(t.tokens);
    rep.metrics[k + "tokens_per_correct"] = t.correct > 0 ? static_cast<double>(t.tokens) / t.correct : 0.0;
    rep.metrics[k + "wall_s"] = t.wall_s;
    if (m.kind == data::AggregateMethod::Kind::online) {
      rep.metrics[k + "stopped_frac"] = t.paths ? static_cast<double>(t.stopped) / static_cast<double>(t.paths) : 0.0;
      rep.metrics[k + "agreement_with_offline"] = static_cast<double>(t.agree) / P;
    }
    rep.answers[m.name] = std::move(t.answers);
    rep.correct[m.name] = std::move(t.right);
  }
  if (was_training) policy.model->module().train();
  return rep;
}

}  // namespace rlvr::trainer
