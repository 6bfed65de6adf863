// The training-loop skeleton `rlvr train` (GRPO) and `rlvr sft` share: the policy a run starts from, resume of
// the optimizer and data cursor, the metrics sink, the gradient reduction after a step's backward passes, and the
// step loop itself (periodic eval and train.stop_at_accuracy, console line, checkpoints, the stop signal). A loop
// supplies its phases (one step, the eval, what a checkpoint records) as functions.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "data/sampler.h"
#include "trainer/grpo.h"
#include "trainer/run_setup.h"

namespace rlvr::trainer {

// model.path (fresh) or the weights of the checkpoint resumed from, rank 0's on every rank, in train mode.
Policy load_training_policy(const RunContext& ctx);

// The optimizer state and data cursor of ctx.resume_dir restored into `opt` and `sampler`; returns the
// checkpoint's trainer state (step 0 and nothing restored for a fresh run).
TrainerState resume_trainer_state(const RunContext& ctx, TrainOptimizer* opt, data::PromptSampler& sampler);

// <run_dir>/metrics.jsonl on rank 0 (a sink that writes nothing on other ranks). A resumed run keeps the lines of
// steps up to start_step and appends; logging.tensorboard adds the event file.
std::unique_ptr<MetricsSink> open_metrics_sink(const RunContext& ctx, int64_t start_step);

// After the last backward of an optimizer step: the gradient summed over ranks, by the overlapped reducer (it was
// armed before that backward) or by one all-reduce; ZeRO-1 reduce-scatters in opt.step() instead. World 1: nothing.
void reduce_gradients(dist::Communicator& comm, dist::OverlappedGradReducer* reducer, TrainOptimizer& opt);

struct LoopPhases {
  std::string name;                                         // "sft" | "train": log lines and the progress bar
  std::function<MetricMap(int64_t step)> step;               // one training step, returns its metrics
  std::function<MetricMap(int64_t step)> eval;               // the held-out eval (collective); empty = no eval set
  std::function<std::string(int64_t step)> checkpoint;       // writes one (collective), returns its directory
  std::function<double()> epoch;                             // the data epoch after the step, logged as "epoch"
  int32_t eval_samples = 1;                                  // k: train.stop_at_accuracy reads eval/mean@k
  std::vector<std::pair<std::string, std::string>> console;  // (metric, label) of the console line
  bool eval_at_start = false;                                // also evaluate at step 0 of a fresh run
};

// Steps start_step + 1 .. train.steps. After each: the eval every train.eval_every steps (merged into the step's
// metrics), the metrics to the sink (rank 0) and every logging.console_every steps to the console, a checkpoint
// every train.save_every steps, at the last step, when any rank got SIGINT/SIGTERM (then Error, exit code 130) and
// when the eval's mean@k reaches train.stop_at_accuracy (then the loop ends, reached_accuracy set).
TrainResult run_training_loop(const RunContext& ctx, int64_t start_step, MetricsSink& sink, const LoopPhases& phases);

}  // namespace rlvr::trainer
