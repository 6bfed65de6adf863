#include "trainer/loop.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/tensorboard.h"
#include "trainer/stop_signal.h"

namespace rlvr::trainer {

Policy load_training_policy(const RunContext& ctx) {
  const auto& c = ctx.cfg;
  Policy policy = load_policy(c.model, ctx.run_dir, c.run.seed, ctx.device);
  if (!ctx.resume_dir.empty()) {
    policy.model = model::CausalLM::from_pretrained(ctx.resume_dir, ctx.device,
                                                    policy.model->parameters().front().scalar_type());
    log::info("resuming from {}", ctx.resume_dir.string());
  }
  broadcast_parameters(*ctx.comm, *policy.model);
  policy.model->module().train();
  return policy;
}

TrainerState resume_trainer_state(const RunContext& ctx, TrainOptimizer* opt, data::PromptSampler& sampler) {
  if (ctx.resume_dir.empty()) return {};
  auto st = load_trainer_state(ctx.resume_dir, opt);
  sampler.set_cursor(data::cursor_from_json(st.data_cursor));
  return st;
}

std::unique_ptr<MetricsSink> open_metrics_sink(const RunContext& ctx, int64_t start_step) {
  if (!ctx.comm->is_main()) return std::make_unique<MetricsSink>("");
  auto path = ctx.run_dir / "metrics.jsonl";
  if (start_step > 0 && std::filesystem::exists(path)) {  // drop the lines of steps after the checkpoint
    std::string kept;
    for_each_line(path, [&](std::string_view line, size_t) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("step", int64_t{0}) <= start_step) kept += std::string(line) + "\n";
    });
    write_file_atomic(path, kept);
  }
  auto sink = std::make_unique<MetricsSink>(path, /*append=*/start_step > 0);
  if (ctx.cfg.logging.tensorboard) sink->attach_tensorboard(open_run_tensorboard(ctx.run_dir, start_step, ctx.resolved_yaml));
  return sink;
}

void reduce_gradients(dist::Communicator& comm, dist::OverlappedGradReducer* reducer, TrainOptimizer& opt) {
  if (reducer) reducer->finish();
  else if (comm.world_size() > 1 && !opt.reduces_gradients()) comm.all_reduce_gradients(opt.grad_tensors(), dist::ReduceOp::sum);
}

bool eval_reached_accuracy(const std::map<std::string, double>& eval, double stop_at_accuracy, int32_t samples) {
  if (stop_at_accuracy <= 0) return false;
  auto it = eval.find("eval/mean@" + std::to_string(samples));
  return it != eval.end() && it->second >= stop_at_accuracy;
}

TrainResult run_training_loop(const RunContext& ctx, int64_t start_step, MetricsSink& sink, const LoopPhases& ph) {
  const auto& c = ctx.cfg;
  auto& comm = *ctx.comm;
  TrainResult res;
  std::string last_ckpt;
  if (ph.eval_at_start && start_step == 0 && c.train.eval_every > 0) {
    auto ev = ph.eval(0);
    if (comm.is_main() && !ev.empty()) sink.write(0, ev);
    res.last_eval = ev;
  }
  Progress steps_bar(ph.name, c.train.steps - start_step, "steps");
  for (int64_t step = start_step + 1; step <= c.train.steps; ++step, steps_bar.advance()) {
    MetricMap m = ph.step(step);
    if (ph.epoch) m["epoch"] = ph.epoch();
    bool reached = false;
    if (c.train.eval_every > 0 && step % c.train.eval_every == 0) {
      auto ev = ph.eval(step);
      m.insert(ev.begin(), ev.end());
      res.last_eval = ev;
      reached = eval_reached_accuracy(ev, c.train.stop_at_accuracy, ph.eval_samples);
    }
    if (comm.is_main()) {
      sink.write(step, m);
      if (step % c.logging.console_every == 0 || step == c.train.steps)
        log::info("{}", MetricsSink::console_line(step, m, ph.console));
    }
    res.last_metrics = m;
    res.steps_done = step;
    const bool stopping = any_rank_stopping(comm);
    if (stopping || reached || step == c.train.steps || (c.train.save_every > 0 && step % c.train.save_every == 0))
      last_ckpt = ph.checkpoint(step);
    if (stopping)
      throw Error(fmt::format("stopped by signal {} after step {}; checkpoint {} (resume with --resume latest)",
                              stop_signal_number(), step, last_ckpt),
                  ExitCode::interrupted);
    if (reached) {
      log::info("{}: stopping at step {} of {}: held-out mean@{} reached train.stop_at_accuracy {}; checkpoint {}",
                ph.name, step, c.train.steps, ph.eval_samples, c.train.stop_at_accuracy, last_ckpt);
      res.reached_accuracy = true;
      break;
    }
  }
  if (c.train.steps == start_step && c.train.steps > 0) log::info("nothing to do: already at step {}", start_step);
  res.last_checkpoint = last_ckpt;
  return res;
}

}  // namespace rlvr::trainer
