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
#include "data/sampler.h"
#include "data/selection.h"
#include "data/source.h"
#include "rewards/rubric.h"
#include "rewards/verifier.h"
#include "rollout/engine.h"
#include "trainer/advantages.h"
#include "trainer/batch.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/loop.h"
#include "trainer/micro_batches.h"
#include "trainer/dist/overlap.h"
#include "trainer/optimizer.h"
#include "trainer/policy_loss.h"
#include "trainer/response_loss.h"
#include "trainer/run_setup.h"

namespace rlvr::trainer {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One completion as generation and scoring produce it (before the step's batch is built).
struct Sample {
  int64_t prompt = 0;                 // index into the dataset
  rollout::Completion completion;
  rewards::Rubric::Score score;
};

// The rollout of one step, built once after scoring (make_rollout_batch) and read by every later phase:
// advantages, reference log-probs, the KL penalty, metrics, rank balancing and the update, whose micro-batches
// are index slices of it. N completions in groups of G (contiguous); L = the longest response.
struct RolloutBatch {
  std::vector<int64_t> prompt;                  // [N] dataset index of each completion's prompt
  std::vector<std::vector<int64_t>> ids;        // [N] response tokens
  std::vector<rewards::Verdict> verdicts;       // [N]
  at::Tensor lengths;       // [N] int64 response tokens
  at::Tensor resp_mask;     // [N, L] fp32, 1 = response token
  at::Tensor old_logp;      // [N, L] fp32: the rollout's log-probs (the "old" policy of the ratio), 0 past the end
  at::Tensor ref_logp;      // [N, L] fp32: the reference model's (kl_coef != 0), else undefined
  at::Tensor rewards;       // [N] fp64 rubric total (NaN = could not grade: excluded from the advantages)
  at::Tensor per_function;  // [N, F] fp64 each reward function's value
  at::Tensor advantages;    // [N] fp32
  at::Tensor truncated;     // [N] bool: stopped by rollout.max_new_tokens
  at::Tensor confidence;    // [N] fp64 mean token confidence (rollout.confidence_top_k; NaN = off)
  int64_t size() const { return static_cast<int64_t>(prompt.size()); }
};

// The step's bookkeeping besides the batch.
struct StepData {
  RolloutBatch batch;
  int gen_rounds = 0;
  int64_t groups_generated = 0, groups_dropped = 0;
  int64_t generated_tokens = 0;
  // Prompt selection (data.selection), over all ranks: candidates taken from the stream, skipped before
  // generation, taken back to fill the batch; generated groups with mixed accuracy.
  int64_t candidates = 0, skipped = 0, forced = 0, groups_with_signal = 0;
  double gen_s = 0, score_s = 0;
};

// The batch of the kept samples (gold_gradable: per dataset index, false = the reference answer does not parse,
// so the reward is NaN; null = every reference gradable), with F reward functions.
RolloutBatch make_rollout_batch(std::vector<Sample>& kept, const std::vector<bool>* gold_gradable, size_t F) {
  RolloutBatch b;
  const int64_t N = static_cast<int64_t>(kept.size()), nf = static_cast<int64_t>(F);
  int64_t L = 1;
  for (const auto& s : kept) L = std::max<int64_t>(L, s.completion.ids.size());
  b.lengths = at::zeros({N}, at::kLong);
  b.resp_mask = at::zeros({N, L}, at::kFloat);
  b.old_logp = at::zeros({N, L}, at::kFloat);
  b.rewards = at::zeros({N}, at::kDouble);
  b.per_function = at::zeros({N, nf}, at::kDouble);
  b.advantages = at::zeros({N}, at::kFloat);
  b.truncated = at::zeros({N}, at::kBool);
  b.confidence = at::full({N}, NAN, at::kDouble);
  auto len = b.lengths.accessor<int64_t, 1>();
  auto mask = b.resp_mask.accessor<float, 2>();
  auto old = b.old_logp.accessor<float, 2>();
  auto rew = b.rewards.accessor<double, 1>();
  auto pf = b.per_function.accessor<double, 2>();
  auto tr = b.truncated.accessor<bool, 1>();
  auto conf = b.confidence.accessor<double, 1>();
  for (int64_t i = 0; i < N; ++i) {
    auto& s = kept[i];
    auto& cp = s.completion;
    const int64_t n = static_cast<int64_t>(cp.ids.size());
    b.prompt.push_back(s.prompt);
    b.verdicts.push_back(s.score.verdict);
    len[i] = n;
    for (int64_t t = 0; t < n; ++t) mask[i][t] = 1.0f;
    for (int64_t t = 0; t < static_cast<int64_t>(cp.logprobs.size()) && t < L; ++t) old[i][t] = cp.logprobs[t];
    rew[i] = !gold_gradable || (*gold_gradable)[s.prompt] ? s.score.total : NAN;
    for (int64_t f = 0; f < nf && f < static_cast<int64_t>(s.score.per_function.size()); ++f) pf[i][f] = s.score.per_function[f];
    tr[i] = cp.finish == rollout::FinishReason::length;
    if (!cp.confidence.empty()) {
      double sum = 0;
      for (float x : cp.confidence) sum += x;
      conf[i] = sum / static_cast<double>(cp.confidence.size());
    }
    b.ids.push_back(std::move(cp.ids));
  }
  return b;
}

// Rows `rows` of a batch, in that order (responses padded to the longest of them).
RolloutBatch select_rows(const RolloutBatch& b, const std::vector<size_t>& rows) {
  RolloutBatch out;
  std::vector<int64_t> idx(rows.begin(), rows.end());
  auto ix = at::tensor(idx, at::kLong);
  int64_t L = 1;
  for (auto r : rows) {
    out.prompt.push_back(b.prompt[r]);
    out.ids.push_back(b.ids[r]);
    if (!b.verdicts.empty()) out.verdicts.push_back(b.verdicts[r]);
    L = std::max<int64_t>(L, b.ids[r].size());
  }
  auto take = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, ix) : t; };
  auto take_l = [&](const at::Tensor& t) { return t.defined() ? t.index_select(0, ix).narrow(1, 0, L) : t; };
  out.lengths = take(b.lengths);
  out.resp_mask = take_l(b.resp_mask);
  out.old_logp = take_l(b.old_logp);
  out.ref_logp = take_l(b.ref_logp);
  out.rewards = take(b.rewards);
  out.per_function = take(b.per_function);
  out.advantages = take(b.advantages);
  out.truncated = take(b.truncated);
  out.confidence = take(b.confidence);
  return out;
}

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
  void compute_step_advantages(RolloutBatch& b);
  void reference_logprobs(RolloutBatch& b);
  std::vector<std::vector<size_t>> balance_update_rows(RolloutBatch& b, MetricMap& m);
  MetricMap update(const RolloutBatch& b, const std::vector<std::vector<size_t>>& mini_batch_rows);
  MetricMap step_metrics(const StepData& d);
  MetricMap run_eval(int64_t step);
  std::string checkpoint(int64_t step);
  MetricMap train_step(int64_t step);
  std::vector<int64_t> row_lengths(const RolloutBatch& b) const;
  PackedBatch pack_rows(const RolloutBatch& b, const std::vector<size_t>& rows) const;
  std::vector<std::vector<size_t>> micro_batches(const std::vector<int64_t>& lengths, const std::vector<size_t>& rows) const;
  bool skips_zero_advantage() const;
  at::Tensor loss_mask(const RolloutBatch& rb) const;
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
  PolicyLossConfig loss_cfg_;
};

GrpoLoop::GrpoLoop(const Config& cfg, const std::string& resume)
    : ctx_(setup_run(cfg, "train", resume)),
      cfg_(ctx_.cfg),
      policy_(load_training_policy(ctx_)),
      rubric_(rewards::Rubric::from_specs(cfg.rewards)) {
  const auto& c = cfg_;
  check_context_budget(c, policy_.model->args().max_position_embeddings);
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
  data::drop_long_prompts(
      train_,
      [&](const data::Record& r) {
        return static_cast<int64_t>(policy_.tokenizer.encode(render_prompt(c.data, policy_.chat_template, r.prompt)).size());
      },
      c.data.max_prompt_tokens);
  RLVR_CHECK(!train_.empty(), "every prompt is longer than data.max_prompt_tokens = {}", c.data.max_prompt_tokens);
  prompt_ids_ = tokenize_prompts(policy_, c, train_);
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
  const auto st = resume_trainer_state(ctx_, opt_.get(), *sampler_);
  start_step_ = st.step;
  if (st.extra.is_object()) {
    nonfinite_streak_ = st.extra.value("nonfinite_streak", 0);
    tokens_cumulative_ = st.extra.value("tokens_generated_cumulative", int64_t{0});
  }
  if (!st.prompt_history.is_null()) {
    try {
      history_ = data::PromptHistory::from_json(st.prompt_history);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", (ctx_.resume_dir / "trainer_state" / "prompt_history.json").string(), e.what()));
    }
    RLVR_CONFIG_CHECK(history_.window() == c.data.selection_window || c.run.allow_resume_changes,
                      "--resume: the checkpoint's prompt history remembers {} groups per prompt but "
                      "data.selection_window is {} (set run.allow_resume_changes=true to accept)",
                      history_.window(), c.data.selection_window);
  }
  sink_ = open_metrics_sink(ctx_, start_step_);
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
  std::vector<Sample> kept;  // groups of G
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
      for (int j = 0; j < G; ++j) kept.push_back({idx[g], std::move(comps[g * G + j]), std::move(scores[g * G + j])});
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
  d.batch = make_rollout_batch(kept, &gold_gradable_, rubric_.names().size());
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

void GrpoLoop::compute_step_advantages(RolloutBatch& b) {
  auto& comm = *ctx_.comm;
  const int64_t N = b.size();
  auto rewards = b.rewards.to(at::kFloat);  // [N]
  const AdvantageOptions ao = advantage_options(cfg_.algorithm, cfg_.rollout.group_size);
  const bool batch_stats =
      ao.kind == AdvantageKind::reinforce_pp || (ao.kind == AdvantageKind::grpo && ao.scale == ScaleRewards::batch);
  if (batch_stats && comm.world_size() > 1) {
    // Batch statistics need every rank's rewards: pad to the longest rank with NaN (= excluded), gather.
    int64_t max_n = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(N), dist::ReduceOp::max));
    auto padded = at::full({max_n}, NAN, at::kFloat);
    if (N > 0) padded.narrow(0, 0, N).copy_(rewards);
    auto all = comm.all_gather(padded.to(comm.device())).cpu().reshape({-1});  // [W * max_n]
    b.advantages = compute_advantages(all, ao).advantages.narrow(0, comm.rank() * max_n, N).contiguous();
  } else if (N > 0) {
    b.advantages = compute_advantages(rewards, ao).advantages;
  }
}

// Each completion's prompt + response tokens (the padded size pack_batch gives its row), for micro-batch planning.
std::vector<int64_t> GrpoLoop::row_lengths(const RolloutBatch& b) const {
  std::vector<int64_t> out(b.size());
  for (int64_t i = 0; i < b.size(); ++i) out[i] = static_cast<int64_t>(prompt_ids_[b.prompt[i]].size() + b.ids[i].size());
  return out;
}

// Micro-batches of `rows` (indices into the step's batch). The losses are normalised over the whole mini-batch, so the
// grouping changes the update only by summation order.
std::vector<std::vector<size_t>> GrpoLoop::micro_batches(const std::vector<int64_t>& lengths,
                                                         const std::vector<size_t>& rows) const {
  return plan_micro_batches(lengths, rows, cfg_.train.micro_batch_size, cfg_.train.max_tokens_per_micro_batch);
}

// train.skip_zero_advantage: with no KL or entropy term in the loss, a completion whose advantage is exactly 0 (a
// GRPO group whose rewards are all equal) adds 0 to the loss and to every gradient, so the update leaves it out
// of the forward and backward. It still counts in the normaliser, so the update is the same.
bool GrpoLoop::skips_zero_advantage() const {
  return cfg_.train.skip_zero_advantage && loss_cfg_.kl_coef == 0 && loss_cfg_.entropy_coef == 0;
}

// [B, l] the tokens that count in the loss: the response, less truncated rows with algorithm.mask_truncated.
at::Tensor GrpoLoop::loss_mask(const RolloutBatch& rb) const {
  if (!cfg_.algorithm.mask_truncated) return rb.resp_mask;
  return rb.resp_mask * rb.truncated.logical_not().unsqueeze(1).to(at::kFloat);
}

// The model input of rows of the batch: one row per completion, or (train.share_prompt) one per distinct prompt.
PackedBatch GrpoLoop::pack_rows(const RolloutBatch& b, const std::vector<size_t>& rows) const {
  std::vector<const std::vector<int64_t>*> pr, rs;
  for (auto i : rows) pr.push_back(&prompt_ids_[b.prompt[i]]), rs.push_back(&b.ids[i]);
  return cfg_.train.share_prompt ? pack_shared_prompts(pr, rs, policy_.pad_id, ctx_.device)
                                 : pack_batch(pr, rs, policy_.pad_id, ctx_.device);
}

// The reference model's log-probs of every response into b.ref_logp (kl_coef != 0 only).
void GrpoLoop::reference_logprobs(RolloutBatch& b) {
  if (!ref_model_) return;
  torch::NoGradGuard ng;
  b.ref_logp = at::zeros_like(b.old_logp);
  std::vector<size_t> all(b.size());
  std::iota(all.begin(), all.end(), 0);
  for (const auto& mb : micro_batches(row_lengths(b), all)) {
    auto pb = pack_rows(b, mb);
    auto lp = response_logprobs(*ref_model_, pb, cfg_.rollout.temperature, false, false).logp.cpu();  // [B, l]
    const int64_t l = lp.size(1);
    for (size_t k = 0; k < mb.size(); ++k) b.ref_logp[mb[k]].narrow(0, 0, l).copy_(lp[k]);
  }
}

// The rows each rank trains on, per PPO mini-batch. Mini-batches are ranges of the GLOBAL group order (rank 0's
// groups first, as one process holds them), so N ranks cut the batch where one process does. With several ranks,
// every rank's samples are gathered and each mini-batch's rows are dealt to the ranks by tokens (balance_rows):
// the batch then holds this rank's share. The update is the one-process update (up to summation order).
std::vector<std::vector<size_t>> GrpoLoop::balance_update_rows(RolloutBatch& b, MetricMap& m) {
  auto& comm = *ctx_.comm;
  const int G = cfg_.rollout.group_size, W = comm.world_size(), M = cfg_.train.mini_batches;
  auto bounds_of = [&](int64_t groups) {
    std::vector<size_t> out;
    for (int k = 0; k <= M; ++k) out.push_back(static_cast<size_t>(groups * k / M * G));
    return out;
  };
  if (W == 1) {
    std::vector<std::vector<size_t>> out;
    auto bounds = bounds_of(b.size() / G);
    for (int k = 0; k < M; ++k) {
      out.emplace_back();
      for (size_t i = bounds[k]; i < bounds[k + 1]; ++i) out.back().push_back(i);
    }
    return out;
  }
  // Serialise what the update reads of a completion: [prompt, n, truncated, advantage, ids..., old..., ref...] as
  // float64 (exact for token ids, fp32 log-probs and the advantage); ref only with a reference model.
  const bool has_ref = b.ref_logp.defined();
  std::vector<double> buf{static_cast<double>(b.size())};
  auto old = b.old_logp.accessor<float, 2>();
  auto tr = b.truncated.accessor<bool, 1>();
  auto advs = b.advantages.contiguous();
  auto av = advs.accessor<float, 1>();
  at::Tensor ref_t = has_ref ? b.ref_logp.to(at::kCPU, at::kFloat).contiguous() : at::zeros({1, 1}, at::kFloat);
  auto ref = ref_t.accessor<float, 2>();
  for (int64_t i = 0; i < b.size(); ++i) {
    const int64_t n = static_cast<int64_t>(b.ids[i].size());
    buf.insert(buf.end(), {static_cast<double>(b.prompt[i]), static_cast<double>(n), tr[i] ? 1.0 : 0.0,
                           static_cast<double>(av[i])});
    for (auto t : b.ids[i]) buf.push_back(static_cast<double>(t));
    for (int64_t k = 0; k < n; ++k) buf.push_back(old[i][k]);
    if (has_ref)
      for (int64_t k = 0; k < n; ++k) buf.push_back(ref[i][k]);
  }
  const int64_t max_len = static_cast<int64_t>(comm.all_reduce_scalar(static_cast<double>(buf.size()), dist::ReduceOp::max));
  auto mine = at::zeros({max_len}, at::kDouble);
  std::copy(buf.begin(), buf.end(), mine.data_ptr<double>());
  auto all = comm.all_gather(mine.to(comm.device())).cpu().contiguous();  // [W, max_len]
  // The global batch (rank 0's completions first), with the fields the update reads.
  std::vector<Sample> rows;
  std::vector<float> adv;
  std::vector<std::vector<float>> ref_rows;
  std::vector<int> owner;
  for (int r = 0; r < W; ++r) {
    const double* p = all.data_ptr<double>() + r * max_len;
    const int64_t count = static_cast<int64_t>(*p++);
    for (int64_t i = 0; i < count; ++i) {
      Sample x;
      x.prompt = static_cast<int64_t>(p[0]);
      const auto n = static_cast<size_t>(p[1]);
      x.completion.finish = p[2] != 0 ? rollout::FinishReason::length : rollout::FinishReason::stop;
      adv.push_back(static_cast<float>(p[3]));
      p += 4;
      for (size_t k = 0; k < n; ++k) x.completion.ids.push_back(static_cast<int64_t>(p[k]));
      p += n;
      for (size_t k = 0; k < n; ++k) x.completion.logprobs.push_back(static_cast<float>(p[k]));
      p += n;
      ref_rows.emplace_back();
      if (has_ref) {
        for (size_t k = 0; k < n; ++k) ref_rows.back().push_back(static_cast<float>(p[k]));
        p += n;
      }
      rows.push_back(std::move(x));
      owner.push_back(r);
    }
  }
  RolloutBatch global = make_rollout_batch(rows, nullptr, 0);  // rewards are not read past this point
  global.advantages = at::tensor(adv, at::kFloat);
  if (has_ref) {
    global.ref_logp = at::zeros_like(global.old_logp);
    for (size_t i = 0; i < ref_rows.size(); ++i)
      if (!ref_rows[i].empty())
        global.ref_logp[i].narrow(0, 0, static_cast<int64_t>(ref_rows[i].size())).copy_(at::tensor(ref_rows[i], at::kFloat));
  }
  // Dealt by the tokens each row costs the update: none for a row that train.skip_zero_advantage leaves out.
  auto lengths = row_lengths(global);
  if (skips_zero_advantage()) {
    for (size_t i = 0; i < lengths.size(); ++i)
      if (adv[i] == 0.0f) lengths[i] = 0;
  }
  const auto bounds = bounds_of(global.size() / G);
  m["update/rank_imbalance_before"] = rank_imbalance(lengths, bounds, owner, W);
  const auto new_owner = balance_ranks(lengths, bounds, W);
  m["update/rank_imbalance"] = rank_imbalance(lengths, bounds, new_owner, W);
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> taken;
  for (const auto& mb_rows : rows_of_rank(new_owner, bounds, comm.rank())) {
    out.emplace_back();
    for (auto i : mb_rows) out.back().push_back(taken.size()), taken.push_back(i);
  }
  b = select_rows(global, taken);
  return out;
}

MetricMap GrpoLoop::update(const RolloutBatch& batch, const std::vector<std::vector<size_t>>& mini_batch_rows) {
  const auto& c = cfg_;
  auto& comm = *ctx_.comm;
  PolicyLossMetrics acc;
  MetricMap out;
  double grad_norm_sum = 0, lr = 0;
  const auto lengths = row_lengths(batch);
  PaddingCount padding;  // of the update's packed micro-batches (first epoch)
  int opt_steps = 0, skipped = 0;
  double rows_left_out = 0, rows_total = 0;  // train.skip_zero_advantage, first epoch
  const bool skip_zero = skips_zero_advantage();
  const auto adv = batch.advantages.accessor<float, 1>();
  for (int epoch = 0; epoch < c.algorithm.ppo_epochs; ++epoch) {
    for (const auto& all_rows : mini_batch_rows) {
      // The rows that run. Left out: zero advantages (skip_zero), but at least one row is kept where there are
      // any, so that every rank runs a backward (zero gradients, the reducer's hooks) as it would without it.
      std::vector<size_t> rows, left_out;
      for (auto i : all_rows) (skip_zero && adv[i] == 0.0f ? left_out : rows).push_back(i);
      if (rows.empty() && !left_out.empty()) rows.push_back(left_out.back()), left_out.pop_back();
      if (epoch == 0) rows_left_out += static_cast<double>(left_out.size()), rows_total += all_rows.size();
      struct Micro {
        PackedBatch pb;
        RolloutBatch rb;   // the micro-batch's rows of the step's batch
        at::Tensor mask;   // [B, l] loss mask (truncated rows zeroed with algorithm.mask_truncated)
      };
      std::vector<Micro> mbs;
      GlobalNorm norm;
      for (const auto& mb : micro_batches(lengths, rows)) {
        Micro x{pack_rows(batch, mb), select_rows(batch, mb), {}};
        if (epoch == 0) {
          padding.padded += static_cast<double>(x.pb.tokens.numel());
          padding.real += static_cast<double>(x.pb.real_tokens);
        }
        x.mask = loss_mask(x.rb).to(ctx_.device);
        norm += local_norm_counts(x.mask);
        mbs.push_back(std::move(x));
      }
      const double run_tokens = norm.total_tokens;
      if (!left_out.empty()) norm += local_norm_counts(loss_mask(select_rows(batch, left_out)));
      // The normaliser of this optimizer step over all micro-batches AND all ranks (the rows left out included).
      auto tot = comm.all_reduce_scalars({norm.total_tokens, norm.total_seqs, run_tokens}, dist::ReduceOp::sum);
      norm.total_tokens = tot[0];
      norm.total_seqs = tot[1];
      norm.norm_len = resolve_norm_len(c.algorithm, c.rollout);
      // Token means of the log-probs (ratio, KL to the old policy, entropy) are over the tokens that ran.
      const double mean_scale = tot[2] > 0 ? tot[0] / tot[2] : 1.0;
      opt_->zero_grad();
      if (norm.total_tokens > 0) {
        for (size_t k = 0; k < mbs.size(); ++k) {
          const auto& x = mbs[k];
          PolicyLossInputs in;
          in.old_logp = x.rb.old_logp.to(ctx_.device);
          in.advantages = x.rb.advantages.to(ctx_.device);
          in.mask = x.mask;
          if (loss_cfg_.kl_coef != 0) in.ref_logp = x.rb.ref_logp.to(ctx_.device);
          // The lm_head's gradient is formed in the forward, chunk by chunk (the entropy always, for its metric).
          auto lo = response_policy_loss(*policy_.model, x.pb, c.rollout.temperature, in, loss_cfg_, norm,
                                         /*want_entropy=*/true, c.model.gradient_checkpointing);
          if (reducer_ && k + 1 == mbs.size()) reducer_->arm();  // the last backward of this optimizer step
          lo.loss.backward();
          if (mean_scale != 1.0) {
            for (auto* t : {&lo.metrics.ratio_mean, &lo.metrics.approx_kl_old, &lo.metrics.entropy_mean})
              if (t->defined()) *t = *t * mean_scale;
          }
          acc.add(lo.metrics);
        }
      }
      // Losses are globally normalised: the gradient is the SUM over ranks (ZeRO-1 reduce-scatters in step()).
      reduce_gradients(comm, reducer_.get(), *opt_);
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
    out["update/tokens"] = t[1];  // real tokens of one pass that ran (fewer with share_prompt and the skip)
    auto r = comm.all_reduce_scalars({rows_left_out, rows_total}, dist::ReduceOp::sum);
    out["update/skipped_frac"] = r[1] > 0 ? r[0] / r[1] : 0.0;  // completions left out (zero advantage)
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
  const auto& b = d.batch;
  const int64_t N = b.size();
  auto rew = b.rewards.accessor<double, 1>();
  auto pf = b.per_function.accessor<double, 2>();
  auto tr = b.truncated.accessor<bool, 1>();
  auto conf = b.confidence.accessor<double, 1>();
  for (int64_t i = 0; i < N; ++i) {
    const double r = std::isnan(rew[i]) ? 0.0 : rew[i];
    const double len = static_cast<double>(b.ids[i].size());
    t.reward += r;
    t.reward_sq += r * r;
    t.graded += std::isnan(rew[i]) ? 0 : 1;
    t.correct += b.verdicts[i] == rewards::Verdict::correct;
    t.ungradable += b.verdicts[i] == rewards::Verdict::ungradable;
    t.length += len;
    t.truncated += tr[i];
    for (size_t f = 0; f < names.size() && static_cast<int64_t>(f) < b.per_function.size(1); ++f) {
      t.fn_sum[f] += pf[i][f];
      t.fn_sq[f] += pf[i][f] * pf[i][f];
    }
    len_min = std::min(len_min, len);
    len_max = std::max(len_max, len);
    // Mean token confidence of correct and of other completions (DeepConf's signal, tracked during training).
    if (!std::isnan(conf[i])) {
      const bool ok = b.verdicts[i] == rewards::Verdict::correct;
      (ok ? t.conf_correct : t.conf_wrong) += conf[i];
      (ok ? t.n_conf_correct : t.n_conf_wrong) += 1;
    }
  }
  t.completions = static_cast<double>(N);
  // Groups with zero reward std (no learning signal), counted here from the kept samples.
  for (int64_t g = 0; g + G <= N; g += G) {
    bool same = true;
    for (int j = 1; j < G; ++j) same = same && rew[g + j] == rew[g];
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

std::string GrpoLoop::checkpoint(int64_t step) {
  TrainerState st;
  st.step = step;
  st.data_cursor = data::cursor_to_json(sampler_->cursor());
  st.extra = {{"nonfinite_streak", nonfinite_streak_}, {"tokens_generated_cumulative", tokens_cumulative_}};
  st.prompt_history = history_.to_json();
  return checkpoint_on_rank0(ctx_, policy_, opt_.get(), st);
}

// One step: generate + score (+ dynamic sampling rounds), advantages, reference log-probs (kl_coef != 0; with
// kl_in_reward the KL penalty and advantages again), rollout metrics, then the update on the rows rank balancing
// gives this rank.
MetricMap GrpoLoop::train_step(int64_t step) {
  const auto& c = cfg_;
  auto t_step = Clock::now();
  StepData d = generate_and_score(step);
  auto& batch = d.batch;
  auto t = Clock::now();
  compute_step_advantages(batch);
  const double adv_s = seconds_since(t);
  t = Clock::now();
  reference_logprobs(batch);
  if (c.algorithm.kl_coef > 0 && c.algorithm.kl_in_reward) {
    // KL as a reward penalty: r <- r - beta * sum_t KL_t (with the sampling policy's log-probs), then
    // advantages again.
    auto kl = sequence_kl(batch.old_logp, batch.ref_logp, batch.resp_mask, parse_kl_estimator(c.algorithm.kl_estimator));
    batch.rewards -= c.algorithm.kl_coef * kl.to(at::kDouble);
    compute_step_advantages(batch);
  }
  const double ref_s = seconds_since(t);
  MetricMap m = step_metrics(d);  // of the rollout, before the update deals the completions to the ranks by tokens
  t = Clock::now();
  auto rows = balance_update_rows(batch, m);
  for (auto& [k, v] : update(batch, rows)) m[k] = v;
  m["time/generate"] = d.gen_s;
  m["time/score"] = d.score_s;
  m["time/advantages"] = adv_s;
  m["time/reference"] = ref_s;
  m["time/update"] = seconds_since(t);
  m["time/step"] = seconds_since(t_step);
  return m;
}

TrainResult GrpoLoop::run() {
  const auto& c = cfg_;
  log::info("GRPO: {} steps x {} prompts x G={} ({} completions/step over {} rank(s)), advantage {}, loss_agg {}",
            c.train.steps, c.train.prompts_per_step, c.rollout.group_size,
            c.train.prompts_per_step * c.rollout.group_size, ctx_.comm->world_size(), c.algorithm.advantage,
            c.algorithm.loss_agg);
  LoopPhases ph;
  ph.name = "train";
  ph.step = [this](int64_t step) { return train_step(step); };
  ph.eval = [this](int64_t step) { return run_eval(step); };
  ph.checkpoint = [this](int64_t step) { return checkpoint(step); };
  ph.epoch = [this] { return static_cast<double>(sampler_->cursor().epoch); };
  ph.eval_samples = c.train.eval_samples;
  ph.eval_at_start = true;
  ph.console = {{"reward/mean", "reward"}, {"accuracy", "acc"}, {"frac_reward_zero_std", "zero_std"},
                {"groups_with_signal", "signal"}, {"selection/skipped", "skipped"}, {"completion_length/mean", "len"},
                {"loss/clip_frac_high", "clip_hi"}, {"grad_norm", "gnorm"}, {"tokens_per_s", "tok/s"},
                {"time/step", "s"}};
  return run_training_loop(ctx_, start_step_, *sink_, ph);
}

}  // namespace

TrainResult run_grpo(const Config& cfg, const std::string& resume) {
  GrpoLoop loop(cfg, resume);
  return loop.run();
}

}  // namespace rlvr::trainer
