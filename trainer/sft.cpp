#include "trainer/sft.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <chrono>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/progress.h"
#include "common/tensorboard.h"
#include "data/sampler.h"
#include "trainer/batch.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/dist/overlap.h"
#include "trainer/optimizer.h"
#include "trainer/run_setup.h"
#include "trainer/stop_signal.h"

namespace rlvr::trainer {
namespace {

std::optional<std::string> response_of(const data::Record& r) {
  if (r.solution && !r.solution->empty()) return r.solution;
  for (const char* k : {"response", "completion", "output"})
    if (r.extra.is_object() && r.extra.contains(k) && r.extra[k].is_string()) return r.extra[k].get<std::string>();
  return std::nullopt;
}

}  // namespace

TrainResult run_sft(const Config& cfg_in, const std::string& resume) {
  RunContext ctx = setup_run(cfg_in, "sft", resume);
  const Config& c = ctx.cfg;
  auto& comm = *ctx.comm;
  const std::filesystem::path resume_dir = ctx.resume_dir;  // resolved and checked by setup_run
  Policy policy = load_policy(c.model, ctx.run_dir, c.run.seed, ctx.device);
  if (!resume_dir.empty())
    policy.model = model::CausalLM::from_pretrained(resume_dir, ctx.device, policy.model->parameters().front().scalar_type());
  broadcast_parameters(comm, *policy.model);
  policy.model->module().train();

  // Pairs: rendered prompt ids, response ids (+ EOS so the model learns to stop).
  auto ds = load_train_data(c);
  auto eval = load_eval_data(c);
  std::vector<std::vector<int64_t>> prompts, responses;
  int64_t no_response = 0;
  const int64_t eos = policy.eos_ids.empty() ? -1 : policy.eos_ids.front();
  for (const auto& r : ds) {
    auto resp = response_of(r);
    if (!resp) { ++no_response; continue; }
    prompts.push_back(policy.tokenizer.encode(render_prompt(c.data, policy.chat_template, r.prompt)));
    auto ids = policy.tokenizer.encode(*resp);
    if (eos >= 0) ids.push_back(eos);
    responses.push_back(std::move(ids));
  }
  if (no_response > 0) log::warn("sft: {} records without a solution/response field were skipped", no_response);
  RLVR_CHECK(!prompts.empty(), "sft: no record of '{}' has a solution or response to train on", c.data.train);

  int64_t total = int64_t{c.train.steps};
  auto named = policy.model->named_parameters();
  TrainOptimizer opt(c.optim, NamedParams(named.begin(), named.end()), total,
                     c.distributed.zero_stage == 1 ? ctx.comm.get() : nullptr);
  auto reducer = make_grad_reducer(comm, c.distributed, opt, policy.model->parameters());
  data::PromptSampler sampler(prompts.size(), c.run.seed, c.data.shuffle);
  int64_t start = 0;
  if (!resume_dir.empty()) {
    auto st = load_trainer_state(resume_dir, &opt);
    start = st.step;
    sampler.set_cursor(data::cursor_from_json(st.data_cursor));
  }
  MetricsSink sink(comm.is_main() ? ctx.run_dir / "metrics.jsonl" : std::filesystem::path(), start > 0);
  if (comm.is_main() && c.logging.tensorboard)
    sink.attach_tensorboard(open_run_tensorboard(ctx.run_dir, start, ctx.resolved_yaml));
  const auto& params = opt.grad_tensors();  // the .grad() to all-reduce: fp32 (the masters with bf16 weights)
  TrainResult res;
  std::string last_ckpt;
  log::info("SFT: {} pairs, {} steps x {} sequences", prompts.size(), c.train.steps, c.train.prompts_per_step);
  if (c.data.selection != "all")
    log::warn("data.selection = {} applies to GRPO rollouts; SFT reads every example", c.data.selection);
  auto do_eval = [&](int64_t step) {
    EvalOptions eo = eval_options_from_config(c, 1);
    MetricMap out = evaluate_on_ranks(comm, policy, eval, c.data, eo);
    if (!out.empty()) {
      log::info("sft eval at step {}: greedy accuracy {:.3f} on {} held-out problems", step, out["eval/mean@1"],
                eval.size());
    }
    return out;
  };
  Progress steps_bar("sft", c.train.steps - start, "steps");
  for (int64_t step = start + 1; step <= c.train.steps; ++step, steps_bar.advance()) {
    auto t0 = std::chrono::steady_clock::now();
    auto idx = sampler.next_batch(c.train.prompts_per_step, comm.rank(), comm.world_size());
    std::vector<std::vector<int64_t>> mbs;
    for (size_t i = 0; i < idx.size(); i += c.train.micro_batch_size)
      mbs.emplace_back(idx.begin() + i, idx.begin() + std::min(idx.size(), i + size_t(c.train.micro_batch_size)));
    // Global token count: the loss is a token mean over every rank's micro-batches.
    double local_tokens = 0;
    for (auto i : idx) local_tokens += responses[i].size();
    double tokens = comm.all_reduce_scalar(local_tokens, dist::ReduceOp::sum);
    opt.zero_grad();
    double loss_sum = 0;
    for (size_t k = 0; k < mbs.size(); ++k) {
      const auto& mb = mbs[k];
      std::vector<const std::vector<int64_t>*> pr, rs;
      for (auto i : mb) pr.push_back(&prompts[i]), rs.push_back(&responses[i]);
      auto pb = pack_batch(pr, rs, policy.pad_id, ctx.device);
      auto lp = response_logprobs(*policy.model, pb, 1.0, false, false, c.model.gradient_checkpointing).logp;
      auto loss = -(lp * pb.resp_mask).sum() / tokens;  // token-mean NLL over the global batch
      if (reducer && k + 1 == mbs.size()) reducer->arm();  // the last backward of the step
      loss.backward();
      loss_sum += loss.item<double>();
    }
    if (reducer) reducer->finish();
    else if (comm.world_size() > 1 && !opt.reduces_gradients()) comm.all_reduce_gradients(params, dist::ReduceOp::sum);
    auto r = opt.step();
    MetricMap m;
    m["loss"] = comm.all_reduce_scalar(loss_sum, dist::ReduceOp::sum);
    m["grad_norm"] = r.grad_norm;
    m["lr"] = r.lr;
    m["tokens"] = tokens;
    m["time/step"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    m["epoch"] = static_cast<double>(sampler.cursor().epoch);
    bool reached = false;
    if (c.train.eval_every > 0 && step % c.train.eval_every == 0) {
      auto ev = do_eval(step);
      m.insert(ev.begin(), ev.end());
      res.last_eval = ev;
      reached = eval_reached_accuracy(ev, c.train.stop_at_accuracy, 1);
    }
    if (comm.is_main()) {
      sink.write(step, m);
      if (step % c.logging.console_every == 0 || step == c.train.steps)
        log::info("{}", MetricsSink::console_line(step, m, {{"loss", "loss"}, {"grad_norm", "gnorm"}, {"lr", "lr"},
                                                            {"time/step", "s"}}));
    }
    res.last_metrics = m;
    res.steps_done = step;
    bool stopping = any_rank_stopping(comm);
    if (stopping || reached || step == c.train.steps ||
        (c.train.save_every > 0 && step % c.train.save_every == 0)) {
      TrainerState st;
      st.step = step;
      st.data_cursor = data::cursor_to_json(sampler.cursor());
      last_ckpt = checkpoint_on_rank0(ctx, policy, &opt, st);
    }
    if (stopping)
      throw Error(fmt::format("stopped by signal {} after step {}; checkpoint {}", stop_signal_number(), step, last_ckpt),
                  ExitCode::interrupted);
    if (reached) {
      log::info("sft: stopping at step {} of {}: held-out greedy accuracy reached train.stop_at_accuracy {}; "
                "checkpoint {}", step, c.train.steps, c.train.stop_at_accuracy, last_ckpt);
      res.reached_accuracy = true;
      break;
    }
  }
  res.last_checkpoint = last_ckpt;
  return res;
}

}  // namespace rlvr::trainer
