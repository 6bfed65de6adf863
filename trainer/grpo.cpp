#include "trainer/grpo.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/tensorboard.h"
#include "data/sampler.h"
#include "data/selection.h"
#include "rewards/rubric.h"
#include "rewards/verifier.h"
#include "rollout/engine.h"
#include "trainer/advantages.h"
#include "trainer/batch.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/micro_batches.h"
#include "trainer/dist/overlap.h"
#include "trainer/optimizer.h"
#include "trainer/policy_loss.h"
#include "trainer/run_setup.h"
#include "trainer/stop_signal.h"

namespace rlvr::trainer {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One completion kept for the update, with everything the later phases need.
struct Sample {
  int64_t prompt = 0;                 // index into the dataset
  std::vector<int64_t> ids;
  std::vector<float> logprobs;        // the rollout's (the "old" policy for the ratio)
  bool truncated = false;
  double reward = 0;                  // rubric total (NaN = could not grade: excluded from the advantages)
  std::vector<double> per_function;
  rewards::Verdict verdict = rewards::Verdict::ungradable;
  double advantage = 0;
  double confidence = std::nan("");   // mean token confidence (rollout.confidence_top_k; NaN = off)
};

struct StepData {
  std::vector<Sample> samples;        // groups of G, contiguous
  int gen_rounds = 0;
  int64_t groups_generated = 0, groups_dropped = 0;
  int64_t generated_tokens = 0;
  // Prompt selection (data.selection), over all ranks: candidates taken from the stream, skipped before
  // generation, taken back to fill the batch; generated groups with mixed accuracy.
  int64_t candidates = 0, skipped = 0, forced = 0, groups_with_signal = 0;
  double gen_s = 0, score_s = 0;
};

// The prompt ids for every dataset record (rendered with the templates, tokenized once).
std::vector<std::vector<int64_t>> tokenize_prompts(const Policy& p, const Config& cfg, const data::Dataset& ds) {
  std::vector<std::string> texts;
  texts.reserve(ds.size());
  for (const auto& r : ds) texts.push_back(render_prompt(cfg.data, p.chat_template, r.prompt));
  return p.tokenizer.encode_batch(texts);
}

class GrpoLoop {
 public:
  GrpoLoop(const Config& cfg, const std::string& resume);
  TrainResult run();

 private:
  StepData generate_and_score(int64_t step);
  void compute_step_advantages(StepData& d);
  std::vector<at::Tensor> reference_logprobs(const StepData& d);
  std::vector<std::vector<size_t>> balance_update_rows(StepData& d, std::vector<at::Tensor>& ref_lp, MetricMap& m);
  MetricMap update(StepData& d, const std::vector<at::Tensor>& ref_lp, const std::vector<std::vector<size_t>>& mini_batch_rows);
  MetricMap step_metrics(const StepData& d);
  MetricMap run_eval(int64_t step);
  void checkpoint(int64_t step);
  std::vector<int64_t> row_lengths(const StepData& d) const;
  std::vector<std::vector<size_t>> micro_batches(const std::vector<int64_t>& lengths, const std::vector<size_t>& rows) const;
  std::vector<int64_t> select_prompts(int64_t step, StepData& d);
  void record_outcomes(int64_t step, const std::vector<data::GroupOutcome>& mine, StepData& d);

  RunContext ctx_;
  const Config& cfg_;
  Policy policy_;
  std::shared_ptr<model::CausalLM> ref_model_;
  data::Dataset train_, eval_;
  std::vector<std::vector<int64_t>> prompt_ids_;
  std::vector<bool> gold_gradable_;
  rewards::Rubric rubric_;
  std::unique_ptr<TrainOptimizer> opt_;
  std::unique_ptr<dist::OverlappedGradReducer> reducer_;  // gloo data parallel: reduce during the backward
  std::unique_ptr<data::PromptSampler> sampler_;
  data::SelectionOptions selection_;
  data::PromptHistory history_;     // every rank holds the same (outcomes are gathered from all ranks)
  int64_t tokens_cumulative_ = 0;   // generated tokens since step 1, over all ranks
  std::unique_ptr<MetricsSink> sink_;
  int64_t start_step_ = 0;
  int nonfinite_streak_ = 0;
  std::string last_ckpt_;
  PolicyLossConfig loss_cfg_;
};

GrpoLoop::GrpoLoop(const Config& cfg, const std::string& resume)
    : ctx_(setup_run(cfg, "train", resume)),
      cfg_(ctx_.cfg),
      policy_(load_policy(cfg_.model, ctx_.run_dir, cfg_.run.seed, ctx_.device)),
      rubric_(rewards::Rubric::from_specs(cfg.rewards)) {
  const auto& c = cfg_;
  check_context_budget(c, policy_.model->args().max_position_embeddings);
  const std::filesystem::path resume_dir = ctx_.resume_dir;  // resolved and checked by setup_run
  if (!resume_dir.empty()) {
    policy_.model = model::CausalLM::from_pretrained(resume_dir, ctx_.device,
                                                     policy_.model->parameters().front().scalar_type());
    log::info("resuming from {}", resume_dir.string());
  }
  broadcast_parameters(*ctx_.comm, *policy_.model);
  policy_.model->module().train();
  loss_cfg_ = policy_loss_config(c.algorithm);
  if (c.algorithm.kl_coef > 0) {
    ModelConfig rc = c.model;
    if (!c.model.ref_path.empty()) rc.path = c.model.ref_path;
    ref_model_ = load_policy(rc, ctx_.run_dir, c.run.seed, ctx_.device).model;
    broadcast_parameters(*ctx_.comm, *ref_model_);
    ref_model_->module().eval();
    for (auto& p : ref_model_->parameters()) p.set_requires_grad(false);
  }
  train_ = load_train_data(c);
  eval_ = load_eval_data(c);
  prompt_ids_ = tokenize_prompts(policy_, c, train_);
  int64_t too_long = 0;
  for (auto& ids : prompt_ids_) too_long += static_cast<int64_t>(ids.size()) > c.data.max_prompt_tokens;
  if (too_long > 0) {
    data::Dataset kept;
    std::vector<std::vector<int64_t>> kept_ids;
    for (size_t i = 0; i < train_.size(); ++i)
      if (static_cast<int64_t>(prompt_ids_[i].size()) <= c.data.max_prompt_tokens)
        kept.push_back(std::move(train_[i])), kept_ids.push_back(std::move(prompt_ids_[i]));
    log::warn("dropped {} prompts longer than data.max_prompt_tokens = {}", too_long, c.data.max_prompt_tokens);
    train_ = std::move(kept);
    prompt_ids_ = std::move(kept_ids);
    RLVR_CHECK(!train_.empty(), "every prompt is longer than data.max_prompt_tokens = {}", c.data.max_prompt_tokens);
  }
  // A reference answer the verifier cannot parse makes its completions ungradable (never "wrong").
  gold_gradable_.resize(train_.size());
  for (size_t i = 0; i < train_.size(); ++i)
    gold_gradable_[i] = rewards::compare_answers(train_[i].reference, train_[i].reference, {}) !=
                        rewards::Verdict::ungradable;

  int64_t total_opt_steps = int64_t{c.train.steps} * c.algorithm.ppo_epochs * c.train.mini_batches;
  auto named = policy_.model->named_parameters();
  opt_ = std::make_unique<TrainOptimizer>(c.optim, NamedParams(named.begin(), named.end()), total_opt_steps,
                                          c.distributed.zero_stage == 1 ? ctx_.comm.get() : nullptr);
  reducer_ = make_grad_reducer(*ctx_.comm, c.distributed, *opt_, policy_.model->parameters());
  sampler_ = std::make_unique<data::PromptSampler>(train_.size(), c.run.seed, c.data.shuffle);
  selection_.policy = data::parse_selection_policy(c.data.selection);
  selection_.explore = c.data.selection_explore;
  selection_.band_lo = c.data.selection_band_lo;
  selection_.band_hi = c.data.selection_band_hi;
  selection_.max_scan = c.data.selection_max_scan;
  history_ = data::PromptHistory(c.data.selection_window);
  if (!resume_dir.empty()) {
    auto st = load_trainer_state(resume_dir, opt_.get());
    start_step_ = st.step;
    sampler_->set_cursor(data::cursor_from_json(st.data_cursor));
    nonfinite_streak_ = st.extra.value("nonfinite_streak", 0);
    tokens_cumulative_ = st.extra.value("tokens_generated_cumulative", int64_t{0});
    if (!st.prompt_history.is_null()) {
      try {
        history_ = data::PromptHistory::from_json(st.prompt_history);
      } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", (resume_dir / "trainer_state" / "prompt_history.json").string(), e.what()));
      }
      RLVR_CONFIG_CHECK(history_.window() == c.data.selection_window || c.run.allow_resume_changes,
                        "--resume: the checkpoint's prompt history remembers {} groups per prompt but "
                        "data.selection_window is {} (set run.allow_resume_changes=true to accept)",
                        history_.window(), c.data.selection_window);
    }
  }
  if (ctx_.comm->is_main()) {
    auto mpath = ctx_.run_dir / "metrics.jsonl";
    if (start_step_ > 0 && std::filesystem::exists(mpath)) {  // drop lines of steps after the checkpoint
      std::string kept;
      for_each_line(mpath, [&](std::string_view line, size_t) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.value("step", int64_t{0}) <= start_step_) kept += std::string(line) + "\n";
      });
      write_file_atomic(mpath, kept);
    }
    sink_ = std::make_unique<MetricsSink>(mpath, /*append=*/start_step_ > 0);
    if (c.logging.tensorboard) sink_->attach_tensorboard(open_run_tensorboard(ctx_.run_dir, start_step_, ctx_.resolved_yaml));
  } else {
    sink_ = std::make_unique<MetricsSink>("");
  }
}

StepData GrpoLoop::generate_and_score(int64_t step) {
  const auto& c = cfg_;
  const int G = c.rollout.group_size;
  auto& comm = *ctx_.comm;
  StepData d;
  rollout::RolloutOptions ro;
  ro.max_batch_seqs = c.rollout.max_batch_seqs;
  ro.max_cached_tokens = c.rollout.max_cached_tokens;
  // One engine per step, seeded by (run seed, step, rank): a resumed run samples exactly what the
  // uninterrupted run would have.
  // The RNG key uses the GLOBAL prompt index (rank slice start + local index), so N ranks sample exactly
  // what one process samples for the same global batch.
  ro.seed = static_cast<uint64_t>(c.run.seed) * 1000003ULL + static_cast<uint64_t>(step) * 7919ULL;
  const auto& tok = policy_.tokenizer;
  ro.detokenize = [&tok](const std::vector<int64_t>& ids) { return tok.decode(ids, /*skip_special=*/true); };
  rollout::SamplingParams sp = sampling_from_config(c);
  sp.eos_ids = policy_.eos_ids;

  auto [lo, hi] = data::rank_slice(c.train.prompts_per_step, comm.rank(), comm.world_size());
  const int64_t target_groups = hi - lo;
  ro.prompt_index_base = lo;
  Progress* gen_progress = nullptr;  // this round's display
  auto gen_start = Clock::now();
  ro.on_progress = [&](int64_t done, int64_t tokens) {
    if (gen_progress) gen_progress->set(done, fmt::format("{:.0f} tok/s", tokens / std::max(1e-9, seconds_since(gen_start))));
  };
  rollout::RolloutEngine engine(policy_.model, ro);
  int64_t kept_groups = 0;
  while (true) {
    auto t0 = gen_start = Clock::now();
    auto idx = select_prompts(step, d);
    std::vector<std::vector<int64_t>> prompts;
    for (auto i : idx) prompts.push_back(prompt_ids_[i]);
    std::vector<rollout::Completion> comps;
    Progress gen_bar("generate", static_cast<int64_t>(prompts.size()) * G, "completions");
    gen_progress = &gen_bar;
    rollout::GenerateControl ctl;
    ctl.confidence_top_k = c.rollout.confidence_top_k;
    if (!prompts.empty()) comps = engine.generate(prompts, sp, G, ctl);
    gen_progress = nullptr;
    gen_bar.finish();
    d.generated_tokens += engine.last_stats().generated_tokens;
    d.gen_s += seconds_since(t0);
    ++d.gen_rounds;

    auto t1 = Clock::now();
    std::vector<rewards::CompletionInput> in;
    in.reserve(comps.size());
    for (const auto& cp : comps) {
      const auto& rec = train_[idx[cp.prompt_index]];
      in.push_back({cp.text, rec.reference, cp.finish == rollout::FinishReason::length,
                    static_cast<int64_t>(cp.ids.size()), c.rollout.max_new_tokens,
                    rec.extra.is_object() ? &rec.extra : nullptr});
    }
    Progress score_bar("score", static_cast<int64_t>(in.size()), "completions");
    auto scores = rubric_.score(in, cfg_.rollout.score_threads, [&](size_t n) { score_bar.advance(static_cast<int64_t>(n)); });
    score_bar.finish();
    d.score_s += seconds_since(t1);

    std::vector<data::GroupOutcome> outcomes;
    for (size_t g = 0; g < idx.size(); ++g) {
      ++d.groups_generated;
      int correct = 0;
      for (int j = 0; j < G; ++j) correct += scores[g * G + j].verdict == rewards::Verdict::correct;
      outcomes.push_back({idx[g], correct, G, step});
      // DAPO dynamic sampling: a group whose accuracy is all 0 or all 1 carries no signal.
      if (c.algorithm.dynamic_sampling && (correct == 0 || correct == G)) {
        ++d.groups_dropped;
        continue;
      }
      if (c.algorithm.dynamic_sampling && kept_groups >= target_groups) continue;
      ++kept_groups;
      for (int j = 0; j < G; ++j) {
        auto& cp = comps[g * G + j];
        auto& sc = scores[g * G + j];
        Sample s;
        s.prompt = idx[g];
        s.ids = std::move(cp.ids);
        s.logprobs = std::move(cp.logprobs);
        s.truncated = cp.finish == rollout::FinishReason::length;
        s.reward = gold_gradable_[idx[g]] ? sc.total : std::nan("");
        s.per_function = sc.per_function;
        s.verdict = sc.verdict;
        if (!cp.confidence.empty()) {
          double sum = 0;
          for (float x : cp.confidence) sum += x;
          s.confidence = sum / static_cast<double>(cp.confidence.size());
        }
        d.samples.push_back(std::move(s));
      }
    }
    record_outcomes(step, outcomes, d);
    if (!c.algorithm.dynamic_sampling) break;
    // Every rank takes the same number of rounds: continue while any rank is short.
    double short_by = comm.all_reduce_scalar(static_cast<double>(target_groups - kept_groups), dist::ReduceOp::max);
    if (short_by <= 0 || d.gen_rounds >= c.algorithm.max_gen_batches) break;
  }
  if (c.algorithm.dynamic_sampling && kept_groups < target_groups)
    log::warn("step {}: dynamic sampling kept {} of {} groups after {} generation rounds (algorithm.max_gen_batches)",
              step, kept_groups, target_groups, d.gen_rounds);
  return d;
}

// This rank's prompts of the next generation round: the global batch chosen by data.selection from the data stream
// (identical on every rank: same sampler, same history, same draws), then this rank's slice of it.
std::vector<int64_t> GrpoLoop::select_prompts(int64_t step, StepData& d) {
  auto& comm = *ctx_.comm;
  auto sel = data::select_global_batch(*sampler_, history_, selection_, cfg_.train.prompts_per_step,
                                       static_cast<uint64_t>(cfg_.run.seed), step, d.gen_rounds);
  d.candidates += sel.candidates;
  d.skipped += sel.skipped;
  d.forced += sel.forced;
  auto [b, e] = data::rank_slice(static_cast<int64_t>(sel.prompts.size()), comm.rank(), comm.world_size());
  return std::vector<int64_t>(sel.prompts.begin() + b, sel.prompts.begin() + e);
}

// Every rank's group outcomes of this round, in global order (rank 0's groups first), into the history.
void GrpoLoop::record_outcomes(int64_t step, const std::vector<data::GroupOutcome>& mine, StepData& d) {
  auto& comm = *ctx_.comm;
  std::vector<data::GroupOutcome> all = mine;
  if (comm.world_size() > 1) {
    const int64_t n = static_cast<int64_t>(mine.size());
    const int64_t max_n = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(n), dist::ReduceOp::max));
    std::vector<double> rows(static_cast<size_t>(std::max<int64_t>(max_n, 1)) * 3, -1.0);  // (prompt, correct, size); -1 = none
    for (int64_t i = 0; i < n; ++i) {
      rows[3 * i] = static_cast<double>(mine[i].prompt);
      rows[3 * i + 1] = mine[i].correct;
      rows[3 * i + 2] = mine[i].size;
    }
    auto t = at::tensor(rows, at::kDouble).reshape({-1, 3});
    auto g = comm.all_gather(t.to(comm.device())).cpu().reshape({-1, 3});
    auto acc = g.accessor<double, 2>();
    all.clear();
    for (int64_t i = 0; i < g.size(0); ++i)
      if (acc[i][0] >= 0)
        all.push_back({static_cast<int64_t>(acc[i][0]), static_cast<int32_t>(acc[i][1]), static_cast<int32_t>(acc[i][2]),
                       step});
  }
  for (const auto& o : all) {
    history_.record(o);
    d.groups_with_signal += !o.zero_variance();
  }
}

void GrpoLoop::compute_step_advantages(StepData& d) {
  const auto& c = cfg_;
  auto& comm = *ctx_.comm;
  const int64_t N = d.samples.size();
  std::vector<float> r(N);
  for (int64_t i = 0; i < N; ++i) r[i] = static_cast<float>(d.samples[i].reward);
  auto rewards = at::tensor(r, at::kFloat);  // [N]
  AdvantageOptions ao;
  ao.kind = parse_advantage_kind(c.algorithm.advantage);
  ao.scale = parse_scale_rewards(c.algorithm.scale_rewards);
  ao.group_size = c.rollout.group_size;
  ao.eps = c.algorithm.adv_eps;
  bool batch_stats = ao.kind == AdvantageKind::reinforce_pp || (ao.kind == AdvantageKind::grpo && ao.scale == ScaleRewards::batch);
  at::Tensor adv;
  if (batch_stats && comm.world_size() > 1) {
    // Batch statistics need every rank's rewards: pad to the longest rank with NaN (= excluded), gather.
    int64_t max_n = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(N), dist::ReduceOp::max));
    auto padded = at::full({max_n}, NAN, at::kFloat);
    if (N > 0) padded.narrow(0, 0, N).copy_(rewards);
    auto all = comm.all_gather(padded.to(comm.device())).cpu().reshape({-1});  // [W * max_n]
    auto res = compute_advantages(all, ao);
    adv = res.advantages.narrow(0, comm.rank() * max_n, N);
  } else if (N > 0) {
    adv = compute_advantages(rewards, ao).advantages;
  }
  for (int64_t i = 0; i < N; ++i) d.samples[i].advantage = adv[i].item<double>();
}

// Each sample's prompt + response tokens (the padded size pack_batch gives its row), for micro-batch planning.
std::vector<int64_t> GrpoLoop::row_lengths(const StepData& d) const {
  std::vector<int64_t> out(d.samples.size());
  for (size_t i = 0; i < d.samples.size(); ++i)
    out[i] = static_cast<int64_t>(prompt_ids_[d.samples[i].prompt].size() + d.samples[i].ids.size());
  return out;
}

// Micro-batches of `rows` (indices into d.samples). The losses are normalised over the whole mini-batch, so the
// grouping changes the update only by summation order.
std::vector<std::vector<size_t>> GrpoLoop::micro_batches(const std::vector<int64_t>& lengths,
                                                         const std::vector<size_t>& rows) const {
  return plan_micro_batches(lengths, rows, cfg_.train.micro_batch_size, cfg_.train.max_tokens_per_micro_batch);
}

std::vector<at::Tensor> GrpoLoop::reference_logprobs(const StepData& d) {
  std::vector<at::Tensor> out(d.samples.size());
  if (!ref_model_) return out;
  torch::NoGradGuard ng;
  std::vector<size_t> all(d.samples.size());
  std::iota(all.begin(), all.end(), 0);
  for (const auto& mb : micro_batches(row_lengths(d), all)) {
    std::vector<const std::vector<int64_t>*> pr, rs;
    for (auto i : mb) pr.push_back(&prompt_ids_[d.samples[i].prompt]), rs.push_back(&d.samples[i].ids);
    auto pb = pack_batch(pr, rs, policy_.pad_id, ctx_.device);
    auto lp = response_logprobs(*ref_model_, pb, cfg_.rollout.temperature, false, false).logp;  // [B, L]
    for (size_t k = 0; k < mb.size(); ++k) out[mb[k]] = lp[k];
  }
  return out;
}

// The rows each rank trains on, per PPO mini-batch. Mini-batches are ranges of the GLOBAL group order (rank 0's
// groups first, as one process holds them), so N ranks cut the batch where one process does. With several ranks,
// every rank's samples are gathered and each mini-batch's rows are dealt to the ranks by tokens (balance_rows):
// d.samples and ref_lp then hold this rank's share. The update is the one-process update (up to summation order).
std::vector<std::vector<size_t>> GrpoLoop::balance_update_rows(StepData& d, std::vector<at::Tensor>& ref_lp, MetricMap& m) {
  auto& comm = *ctx_.comm;
  const int G = cfg_.rollout.group_size, W = comm.world_size(), M = cfg_.train.mini_batches;
  auto bounds_of = [&](int64_t groups) {
    std::vector<size_t> b;
    for (int k = 0; k <= M; ++k) b.push_back(static_cast<size_t>(groups * k / M * G));
    return b;
  };
  if (W == 1) {
    std::vector<std::vector<size_t>> out;
    auto b = bounds_of(static_cast<int64_t>(d.samples.size()) / G);
    for (int k = 0; k < M; ++k) {
      out.emplace_back();
      for (size_t i = b[k]; i < b[k + 1]; ++i) out.back().push_back(i);
    }
    return out;
  }
  // Serialise what the update reads of a sample: [prompt, n_ids, n_logprobs, n_ref, truncated, advantage, ids...,
  // logprobs..., ref...] as float64 (exact for token ids, fp32 log-probs and the advantage).
  std::vector<double> buf{static_cast<double>(d.samples.size())};
  for (size_t i = 0; i < d.samples.size(); ++i) {
    const auto& x = d.samples[i];
    at::Tensor ref = ref_lp[i].defined() ? ref_lp[i].to(at::kCPU, at::kFloat).narrow(0, 0, std::min<int64_t>(ref_lp[i].size(0), x.ids.size())).contiguous() : at::Tensor();
    const int64_t nr = ref.defined() ? ref.size(0) : 0;
    buf.insert(buf.end(), {static_cast<double>(x.prompt), static_cast<double>(x.ids.size()),
                           static_cast<double>(x.logprobs.size()), static_cast<double>(nr), x.truncated ? 1.0 : 0.0,
                           x.advantage});
    for (auto t : x.ids) buf.push_back(static_cast<double>(t));
    for (auto v : x.logprobs) buf.push_back(v);
    for (int64_t k = 0; k < nr; ++k) buf.push_back(ref.data_ptr<float>()[k]);
  }
  const int64_t max_len = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(buf.size()), dist::ReduceOp::max));
  auto mine = at::zeros({max_len}, at::kDouble);
  std::copy(buf.begin(), buf.end(), mine.data_ptr<double>());
  auto all = comm.all_gather(mine.to(comm.device())).cpu().contiguous();  // [W, max_len]
  std::vector<Sample> global;
  std::vector<at::Tensor> global_ref;
  std::vector<int> owner;
  for (int r = 0; r < W; ++r) {
    const double* p = all.data_ptr<double>() + r * max_len;
    const int64_t n = static_cast<int64_t>(*p++);
    for (int64_t i = 0; i < n; ++i) {
      Sample x;
      x.prompt = static_cast<int64_t>(p[0]);
      const auto ni = static_cast<size_t>(p[1]), nl = static_cast<size_t>(p[2]), nr = static_cast<size_t>(p[3]);
      x.truncated = p[4] != 0;
      x.advantage = p[5];
      p += 6;
      for (size_t k = 0; k < ni; ++k) x.ids.push_back(static_cast<int64_t>(p[k]));
      p += ni;
      for (size_t k = 0; k < nl; ++k) x.logprobs.push_back(static_cast<float>(p[k]));
      p += nl;
      at::Tensor ref;
      if (nr > 0) {
        ref = at::empty({static_cast<int64_t>(nr)}, at::kFloat);
        for (size_t k = 0; k < nr; ++k) ref.data_ptr<float>()[k] = static_cast<float>(p[k]);
      }
      p += nr;
      global.push_back(std::move(x));
      global_ref.push_back(ref);
      owner.push_back(r);
    }
  }
  std::vector<int64_t> lengths(global.size());
  for (size_t i = 0; i < global.size(); ++i)
    lengths[i] = static_cast<int64_t>(prompt_ids_[global[i].prompt].size() + global[i].ids.size());
  const auto bounds = bounds_of(static_cast<int64_t>(global.size()) / G);
  m["update/rank_imbalance_before"] = rank_imbalance(lengths, bounds, owner, W);
  const auto new_owner = balance_ranks(lengths, bounds, W);
  m["update/rank_imbalance"] = rank_imbalance(lengths, bounds, new_owner, W);
  std::vector<std::vector<size_t>> out;
  d.samples.clear();
  ref_lp.clear();
  for (const auto& rows : rows_of_rank(new_owner, bounds, comm.rank())) {
    out.emplace_back();
    for (auto i : rows) {
      out.back().push_back(d.samples.size());
      d.samples.push_back(std::move(global[i]));
      ref_lp.push_back(global_ref[i].defined() ? global_ref[i].to(ctx_.device) : global_ref[i]);
    }
  }
  return out;
}

MetricMap GrpoLoop::update(StepData& d, const std::vector<at::Tensor>& ref_lp,
                           const std::vector<std::vector<size_t>>& mini_batch_rows) {
  const auto& c = cfg_;
  auto& comm = *ctx_.comm;
  const auto& params = opt_->grad_tensors();  // the .grad() to all-reduce: fp32 (the masters with bf16 weights)
  PolicyLossMetrics acc;
  MetricMap out;
  double grad_norm_sum = 0, lr = 0;
  const auto lengths = row_lengths(d);
  PaddingCount padding;  // of the update's micro-batches (first epoch)
  int opt_steps = 0, skipped = 0;
  const bool want_entropy = c.algorithm.entropy_coef != 0;
  for (int epoch = 0; epoch < c.algorithm.ppo_epochs; ++epoch) {
    for (size_t m = 0; m < mini_batch_rows.size(); ++m) {
      const auto& rows = mini_batch_rows[m];
      auto mbs = micro_batches(lengths, rows);
      if (epoch == 0) {
        auto pc = count_padding(lengths, mbs);
        padding.padded += pc.padded, padding.real += pc.real;
      }
      std::vector<PackedBatch> packed;
      GlobalNorm norm;
      std::vector<at::Tensor> masks;
      for (const auto& mb : mbs) {
        std::vector<const std::vector<int64_t>*> pr, rs;
        for (auto i : mb) pr.push_back(&prompt_ids_[d.samples[i].prompt]), rs.push_back(&d.samples[i].ids);
        packed.push_back(pack_batch(pr, rs, policy_.pad_id, ctx_.device));
        auto mask = packed.back().resp_mask.clone();
        if (c.algorithm.mask_truncated)
          for (size_t k = 0; k < mb.size(); ++k)
            if (d.samples[mb[k]].truncated) mask[k].zero_();
        masks.push_back(mask);
        norm += local_norm_counts(mask);
      }
      // The normaliser of this optimizer step over all micro-batches AND all ranks.
      auto tot = comm.all_reduce_scalars({norm.total_tokens, norm.total_seqs}, dist::ReduceOp::sum);
      norm.total_tokens = tot[0];
      norm.total_seqs = tot[1];
      norm.norm_len = c.algorithm.loss_norm_len > 0 ? c.algorithm.loss_norm_len : c.rollout.max_new_tokens;
      opt_->zero_grad();
      if (norm.total_tokens > 0) {
        for (size_t k = 0; k < mbs.size(); ++k) {
          const auto& mb = mbs[k];
          const auto& pb = packed[k];
          const int64_t B = mb.size(), L = pb.resp_mask.size(1);
          auto old_lp = at::zeros({B, L}, at::kFloat);
          auto advs = at::zeros({B}, at::kFloat);
          for (int64_t b = 0; b < B; ++b) {
            const auto& s = d.samples[mb[b]];
            if (!s.logprobs.empty())
              old_lp[b].narrow(0, 0, s.logprobs.size()).copy_(at::tensor(s.logprobs, at::kFloat));
            advs[b] = static_cast<float>(s.advantage);
          }
          auto rl = response_logprobs(*policy_.model, pb, c.rollout.temperature, true, want_entropy,
                                      c.model.gradient_checkpointing);
          PolicyLossInputs in;
          in.logp = rl.logp;
          in.old_logp = old_lp.to(ctx_.device);
          in.advantages = advs.to(ctx_.device);
          in.mask = masks[k];
          in.entropy = rl.entropy;
          if (loss_cfg_.kl_coef != 0) {
            auto ref = at::zeros({B, L}, at::kFloat);
            for (int64_t b = 0; b < B; ++b) {
              const auto& t = ref_lp[mb[b]];
              ref[b].narrow(0, 0, std::min<int64_t>(L, t.size(0))).copy_(t.narrow(0, 0, std::min<int64_t>(L, t.size(0))));
            }
            in.ref_logp = ref.to(ctx_.device);
          }
          auto lo = policy_loss(in, loss_cfg_, norm);
          if (reducer_ && k + 1 == mbs.size()) reducer_->arm();  // the last backward of this optimizer step
          lo.loss.backward();
          acc.add(lo.metrics);
        }
      }
      // Losses are globally normalised: the gradient is the SUM over ranks (ZeRO-1 reduce-scatters it in step()).
      if (reducer_) reducer_->finish();
      else if (comm.world_size() > 1 && !opt_->reduces_gradients()) comm.all_reduce_gradients(params, dist::ReduceOp::sum);
      auto r = opt_->step();
      ++opt_steps;
      if (r.skipped) ++skipped;
      grad_norm_sum += r.grad_norm;
      lr = r.lr;
    }
  }
  // Collective: a rank that back-propagated nothing this step still joins the reduction of the others.
  const bool any_loss = comm.all_reduce_scalar(acc.pg_loss.defined() ? 1.0 : 0.0, dist::ReduceOp::max) > 0;
  if (any_loss) {
    // Token-mean contributions of this rank's micro-batches: sum over ranks (ratio_max: max).
    auto m = acc.to_map();
    double rmax = m.count("loss/ratio_max") ? m["loss/ratio_max"] : 0;
    std::vector<std::string> keys;
    std::vector<double> vals;
    for (auto& [k, v] : m)
      if (k != "loss/ratio_max") keys.push_back(k), vals.push_back(v / (c.algorithm.ppo_epochs * c.train.mini_batches));
    vals = comm.all_reduce_scalars(vals, dist::ReduceOp::sum);
    for (size_t i = 0; i < keys.size(); ++i) out[keys[i]] = vals[i];
    out["loss/ratio_max"] = comm.all_reduce_scalar(rmax, dist::ReduceOp::max);
  }
  out["grad_norm"] = grad_norm_sum / std::max(1, opt_steps);
  out["lr"] = lr;
  {
    // Padding of the update's micro-batches over all ranks: padded / real tokens - 1 (0 = no padding).
    auto t = comm.all_reduce_scalars({padding.padded, padding.real}, dist::ReduceOp::sum);
    out["update/padding_ratio"] = t[1] > 0 ? t[0] / t[1] - 1.0 : 0.0;
  }
  out["optimizer_steps_skipped"] = skipped;
  if (skipped == opt_steps) {
    ++nonfinite_streak_;
    log::warn("non-finite loss or gradients: update skipped ({} in a row; limit train.max_nonfinite_steps = {})",
              nonfinite_streak_, c.train.max_nonfinite_steps);
    RLVR_CHECK(nonfinite_streak_ < c.train.max_nonfinite_steps,
               "stopping: {} consecutive steps with non-finite loss or gradients (train.max_nonfinite_steps). "
               "HINT: lower optim.lr or check the rewards for inf",
               nonfinite_streak_);
  } else {
    nonfinite_streak_ = 0;
  }
  return out;
}

// Sums over this rank's samples of a step, reduced over all ranks in one call.
struct RolloutSums {
  double reward = 0, reward_sq = 0, graded = 0, correct = 0, ungradable = 0, length = 0, truncated = 0;
  double completions = 0, zero_std_groups = 0, groups_generated = 0, groups_dropped = 0, tokens = 0;
  double conf_correct = 0, n_conf_correct = 0, conf_wrong = 0, n_conf_wrong = 0;
  std::vector<double> fn_sum, fn_sq;  // per reward function
  template <class F>
  void each(F&& f) {  // every field, in one fixed order
    for (double* x : {&reward, &reward_sq, &graded, &correct, &ungradable, &length, &truncated, &completions,
                      &zero_std_groups, &groups_generated, &groups_dropped, &tokens, &conf_correct, &n_conf_correct,
                      &conf_wrong, &n_conf_wrong})
      f(*x);
    for (auto& x : fn_sum) f(x);
    for (auto& x : fn_sq) f(x);
  }
  void all_reduce(dist::Communicator& comm) {
    std::vector<double> v;
    each([&](double& x) { v.push_back(x); });
    v = comm.all_reduce_scalars(v, dist::ReduceOp::sum);
    size_t i = 0;
    each([&](double& x) { x = v[i++]; });
  }
};

MetricMap GrpoLoop::step_metrics(const StepData& d) {
  auto& comm = *ctx_.comm;
  const auto names = rubric_.names();
  const int G = cfg_.rollout.group_size;
  RolloutSums t;
  t.fn_sum.assign(names.size(), 0.0);
  t.fn_sq.assign(names.size(), 0.0);
  double len_min = 1e18, len_max = 0;
  for (const auto& x : d.samples) {
    const double r = std::isnan(x.reward) ? 0.0 : x.reward;
    t.reward += r;
    t.reward_sq += r * r;
    t.graded += std::isnan(x.reward) ? 0 : 1;
    t.correct += x.verdict == rewards::Verdict::correct;
    t.ungradable += x.verdict == rewards::Verdict::ungradable;
    t.length += x.ids.size();
    t.truncated += x.truncated;
    for (size_t f = 0; f < names.size() && f < x.per_function.size(); ++f) {
      t.fn_sum[f] += x.per_function[f];
      t.fn_sq[f] += x.per_function[f] * x.per_function[f];
    }
    len_min = std::min<double>(len_min, x.ids.size());
    len_max = std::max<double>(len_max, x.ids.size());
    // Mean token confidence of correct and of other completions (DeepConf's signal, tracked during training).
    if (!std::isnan(x.confidence)) {
      const bool ok = x.verdict == rewards::Verdict::correct;
      (ok ? t.conf_correct : t.conf_wrong) += x.confidence;
      (ok ? t.n_conf_correct : t.n_conf_wrong) += 1;
    }
  }
  const int64_t N = d.samples.size();
  t.completions = static_cast<double>(N);
  // Groups with zero reward std (no learning signal), counted here from the kept samples.
  for (int64_t g = 0; g + G <= N; g += G) {
    bool same = true;
    for (int j = 1; j < G; ++j) same = same && d.samples[g + j].reward == d.samples[g].reward;
    t.zero_std_groups += same;
  }
  t.groups_generated = static_cast<double>(d.groups_generated);
  t.groups_dropped = static_cast<double>(d.groups_dropped);
  t.tokens = static_cast<double>(d.generated_tokens);
  t.all_reduce(comm);
  len_min = -comm.all_reduce_scalar(-len_min, dist::ReduceOp::max);
  len_max = comm.all_reduce_scalar(len_max, dist::ReduceOp::max);
  MetricMap m;
  const double n = std::max(1.0, t.completions);
  const double graded = std::max(1.0, t.graded);
  m["reward/mean"] = t.reward / graded;
  m["reward/std"] = std::sqrt(std::max(0.0, t.reward_sq / graded - m["reward/mean"] * m["reward/mean"]));
  m["accuracy"] = t.correct / n;
  m["ungradable_frac"] = t.ungradable / n;
  m["completion_length/mean"] = t.length / n;
  m["completion_length/min"] = t.completions > 0 ? len_min : 0;
  m["completion_length/max"] = len_max;
  m["truncated_ratio"] = t.truncated / n;
  for (size_t f = 0; f < names.size(); ++f) {
    const double mean = t.fn_sum[f] / n;
    m["reward/" + names[f] + "/mean"] = mean;
    m["reward/" + names[f] + "/std"] = std::sqrt(std::max(0.0, t.fn_sq[f] / n - mean * mean));
  }
  m["frac_reward_zero_std"] = t.zero_std_groups / std::max(1.0, t.completions / G);
  if (cfg_.algorithm.dynamic_sampling) {
    m["dynamic_sampling/groups_generated"] = t.groups_generated;
    m["dynamic_sampling/groups_dropped"] = t.groups_dropped;
    m["dynamic_sampling/gen_rounds"] = d.gen_rounds;
  }
  m["completions"] = t.completions;
  m["tokens_generated"] = t.tokens;
  m["tokens_per_s"] = d.gen_s > 0 ? t.tokens / comm.world_size() / d.gen_s : 0;
  if (t.n_conf_correct > 0) m["confidence/correct"] = t.conf_correct / t.n_conf_correct;
  if (t.n_conf_wrong > 0) m["confidence/wrong"] = t.conf_wrong / t.n_conf_wrong;
  tokens_cumulative_ += static_cast<int64_t>(t.tokens);
  m["tokens_generated_cumulative"] = static_cast<double>(tokens_cumulative_);
  // Selection and signal counts are global already (every rank holds the same selection and history).
  m["groups_with_signal"] = static_cast<double>(d.groups_with_signal);
  if (selection_.policy != data::SelectionPolicy::all) {
    m["selection/candidates"] = static_cast<double>(d.candidates);
    m["selection/skipped"] = static_cast<double>(d.skipped);
    m["selection/forced"] = static_cast<double>(d.forced);
    m["selection/prompts_in_history"] = static_cast<double>(history_.size());
  }
  return m;
}

MetricMap GrpoLoop::run_eval(int64_t step) {
  EvalOptions eo = eval_options_from_config(cfg_, cfg_.train.eval_samples);
  eo.seed = static_cast<uint64_t>(cfg_.run.seed) + 17;
  MetricMap out = evaluate_on_ranks(*ctx_.comm, policy_, eval_, cfg_.data, eo);
  if (!out.empty()) {
    log::info("eval at step {}: {}", step,
              MetricsSink::console_line(step, out, {{"eval/mean@" + std::to_string(eo.samples), "mean@k"},
                                                    {"eval/pass@1", "pass@1"}}));
  }
  return out;
}

void GrpoLoop::checkpoint(int64_t step) {
  TrainerState st;
  st.step = step;
  st.data_cursor = data::cursor_to_json(sampler_->cursor());
  st.extra = {{"nonfinite_streak", nonfinite_streak_}, {"tokens_generated_cumulative", tokens_cumulative_}};
  st.prompt_history = history_.to_json();
  last_ckpt_ = checkpoint_on_rank0(ctx_, policy_, opt_.get(), st);
}

TrainResult GrpoLoop::run() {
  const auto& c = cfg_;
  auto& comm = *ctx_.comm;
  TrainResult res;
  log::info("GRPO: {} steps x {} prompts x G={} ({} completions/step over {} rank(s)), advantage {}, loss_agg {}",
            c.train.steps, c.train.prompts_per_step, c.rollout.group_size,
            c.train.prompts_per_step * c.rollout.group_size, comm.world_size(), c.algorithm.advantage,
            c.algorithm.loss_agg);
  if (start_step_ == 0 && c.train.eval_every > 0) {
    auto ev = run_eval(0);
    if (comm.is_main() && !ev.empty()) sink_->write(0, ev);
    res.last_eval = ev;
  }
  Progress steps_bar("train", c.train.steps - start_step_, "steps");
  for (int64_t step = start_step_ + 1; step <= c.train.steps; ++step, steps_bar.advance()) {
    auto t_step = Clock::now();
    // generate + score (+ dynamic sampling rounds)
    StepData d = generate_and_score(step);
    // advantages
    auto t = Clock::now();
    compute_step_advantages(d);
    double adv_s = seconds_since(t);
    // reference log-probs (only when the KL coefficient is non-zero)
    t = Clock::now();
    auto ref_lp = reference_logprobs(d);
    if (c.algorithm.kl_coef > 0 && c.algorithm.kl_in_reward) {
      // KL as a reward penalty: r <- r - beta * sum_t KL_t (with the sampling policy's log-probs), then
      // advantages again.
      for (size_t i = 0; i < d.samples.size(); ++i) {
        auto& s = d.samples[i];
        if (s.ids.empty()) continue;
        auto lp = at::tensor(s.logprobs, at::kFloat).unsqueeze(0);
        auto rl = ref_lp[i].to(at::kCPU).narrow(0, 0, s.ids.size()).unsqueeze(0);
        auto kl = sequence_kl(lp, rl, at::ones_like(lp), parse_kl_estimator(c.algorithm.kl_estimator));
        s.reward -= c.algorithm.kl_coef * kl[0].item<double>();
      }
      compute_step_advantages(d);
    }
    double ref_s = seconds_since(t);
    // metrics of the rollout (before the update deals the samples to the ranks by tokens)
    MetricMap m = step_metrics(d);
    // update
    t = Clock::now();
    auto rows = balance_update_rows(d, ref_lp, m);
    for (auto& [k, v] : update(d, ref_lp, rows)) m[k] = v;
    double upd_s = seconds_since(t);
    m["time/generate"] = d.gen_s;
    m["time/score"] = d.score_s;
    m["time/advantages"] = adv_s;
    m["time/reference"] = ref_s;
    m["time/update"] = upd_s;
    m["time/step"] = seconds_since(t_step);
    m["epoch"] = static_cast<double>(sampler_->cursor().epoch);
    bool reached = false;
    if (c.train.eval_every > 0 && step % c.train.eval_every == 0) {
      auto ev = run_eval(step);
      m.insert(ev.begin(), ev.end());
      res.last_eval = ev;
      reached = eval_reached_accuracy(ev, c.train.stop_at_accuracy, c.train.eval_samples);
    }
    if (comm.is_main()) {
      sink_->write(step, m);
      if (step % c.logging.console_every == 0 || step == c.train.steps)
        log::info("{}", MetricsSink::console_line(step, m, {{"reward/mean", "reward"}, {"accuracy", "acc"},
                                                            {"frac_reward_zero_std", "zero_std"},
                                                            {"groups_with_signal", "signal"},
                                                            {"selection/skipped", "skipped"},
                                                            {"completion_length/mean", "len"},
                                                            {"loss/clip_frac_high", "clip_hi"},
                                                            {"grad_norm", "gnorm"}, {"tokens_per_s", "tok/s"},
                                                            {"time/step", "s"}}));
    }
    res.last_metrics = m;
    res.steps_done = step;
    bool stopping = any_rank_stopping(comm);
    if (stopping || reached || step == c.train.steps ||
        (c.train.save_every > 0 && step % c.train.save_every == 0))
      checkpoint(step);
    if (stopping)
      throw Error(fmt::format("stopped by signal {} after step {}; checkpoint {} (resume with --resume latest)",
                              stop_signal_number(), step, last_ckpt_),
                  ExitCode::interrupted);
    if (reached) {
      log::info("stopping at step {} of {}: held-out mean@{} reached train.stop_at_accuracy {}; checkpoint {}", step,
                c.train.steps, c.train.eval_samples, c.train.stop_at_accuracy, last_ckpt_);
      res.reached_accuracy = true;
      break;
    }
  }
  if (c.train.steps == start_step_ && c.train.steps > 0) log::info("nothing to do: already at step {}", start_step_);
  res.last_checkpoint = last_ckpt_;
  return res;
}

}  // namespace

bool eval_reached_accuracy(const std::map<std::string, double>& eval, double stop_at_accuracy, int32_t samples) {
  if (stop_at_accuracy <= 0) return false;
  auto it = eval.find("eval/mean@" + std::to_string(samples));
  return it != eval.end() && it->second >= stop_at_accuracy;
}

TrainResult run_grpo(const Config& cfg, const std::string& resume) {
  GrpoLoop loop(cfg, resume);
  return loop.run();
}

}  // namespace rlvr::trainer
