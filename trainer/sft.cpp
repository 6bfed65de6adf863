#include "trainer/sft.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <chrono>

#include "common/error.h"
#include "common/log.h"
#include "data/sampler.h"
#include "trainer/batch.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/loop.h"
#include "trainer/dist/overlap.h"
#include "trainer/optimizer.h"
#include "trainer/run_setup.h"

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
  Policy policy = load_training_policy(ctx);

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

  auto named = policy.model->named_parameters();
  TrainOptimizer opt(c.optim, NamedParams(named.begin(), named.end()), int64_t{c.train.steps},
                     c.distributed.zero_stage == 1 ? ctx.comm.get() : nullptr);
  auto reducer = make_grad_reducer(comm, c.distributed, opt, policy.model->parameters());
  data::PromptSampler sampler(prompts.size(), c.run.seed, c.data.shuffle);
  const int64_t start = resume_trainer_state(ctx, &opt, sampler).step;
  auto sink = open_metrics_sink(ctx, start);
  log::info("SFT: {} pairs, {} steps x {} sequences", prompts.size(), c.train.steps, c.train.prompts_per_step);
  if (c.data.selection != "all")
    log::warn("data.selection = {} applies to GRPO rollouts; SFT reads every example", c.data.selection);

  LoopPhases ph;
  ph.name = "sft";
  ph.console = {{"loss", "loss"}, {"grad_norm", "gnorm"}, {"lr", "lr"}, {"time/step", "s"}};
  ph.epoch = [&] { return static_cast<double>(sampler.cursor().epoch); };
  ph.eval = [&](int64_t step) {
    MetricMap out = evaluate_on_ranks(comm, policy, eval, c.data, eval_options_from_config(c, 1));
    if (!out.empty())
      log::info("sft eval at step {}: greedy accuracy {:.3f} on {} held-out problems", step, out["eval/mean@1"],
                eval.size());
    return out;
  };
  ph.checkpoint = [&](int64_t step) {
    TrainerState st;
    st.step = step;
    st.data_cursor = data::cursor_to_json(sampler.cursor());
    return checkpoint_on_rank0(ctx, policy, &opt, st);
  };
  ph.step = [&](int64_t) {
    auto t0 = std::chrono::steady_clock::now();
    auto idx = sampler.next_batch(c.train.prompts_per_step, comm.rank(), comm.world_size());
    // Global token count: the loss is a token mean over every rank's micro-batches.
    double local_tokens = 0;
    for (auto i : idx) local_tokens += responses[i].size();
    const double tokens = comm.all_reduce_scalar(local_tokens, dist::ReduceOp::sum);
    opt.zero_grad();
    double loss_sum = 0;
    for (size_t b = 0; b < idx.size(); b += c.train.micro_batch_size) {
      const size_t e = std::min(idx.size(), b + size_t(c.train.micro_batch_size));
      std::vector<const std::vector<int64_t>*> pr, rs;
      for (size_t k = b; k < e; ++k) pr.push_back(&prompts[idx[k]]), rs.push_back(&responses[idx[k]]);
      auto pb = pack_batch(pr, rs, policy.pad_id, ctx.device);
      auto lp = response_logprobs(*policy.model, pb, 1.0, false, false, c.model.gradient_checkpointing).logp;
      auto loss = -(lp * pb.resp_mask).sum() / tokens;  // token-mean NLL over the global batch
      if (reducer && e == idx.size()) reducer->arm();  // the last backward of the step
      loss.backward();
      loss_sum += loss.item<double>();
    }
    reduce_gradients(comm, reducer.get(), opt);
    auto r = opt.step();
    MetricMap m;
    m["loss"] = comm.all_reduce_scalar(loss_sum, dist::ReduceOp::sum);
    m["grad_norm"] = r.grad_norm;
    m["lr"] = r.lr;
    m["tokens"] = tokens;
    m["time/step"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return m;
  };
  return run_training_loop(ctx, start, *sink, ph);
}

}  // namespace rlvr::trainer
