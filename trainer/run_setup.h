// What every training command does first: the communicator (world_size 1 without launcher variables),
// the device, the run directory with its log file and resolved config (rank 0), seeds and threads,
// the policy (fresh or resumed), and the prompt/eval datasets.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "common/metrics.h"
#include "data/source.h"
#include "trainer/config.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/overlap.h"
#include "trainer/checkpoint.h"
#include "trainer/evaluate.h"
#include "trainer/policy.h"

namespace rlvr::trainer {

struct RunContext {
  Config cfg;
  std::filesystem::path run_dir;
  std::filesystem::path checkpoints_dir;
  std::filesystem::path resume_dir;  // the checkpoint resumed from; empty for a fresh run
  std::unique_ptr<dist::Communicator> comm;
  at::Device device = at::kCPU;
  std::string resolved_yaml;
};

// kind: "train" | "sft" (the log file name). Creates the run directory on rank 0.
// The run-directory policy (docs/robustness.md), checked on every rank before any
// file is written: without `resume`, a run directory that already holds a run is refused (ConfigError) unless
// run.overwrite, which deletes it first; with `resume` ("latest" or a checkpoint directory), the checkpoint
// must exist, settings that define the run (resume_breaking_keys) must not differ from the checkpoint's
// config unless run.allow_resume_changes, other changes are logged and recorded in <run_dir>/resumes.jsonl.
// Debris of killed runs (clean_run_debris) is removed either way. A refused run writes nothing.
RunContext setup_run(const Config& cfg, const std::string& kind, const std::string& resume = "");

// One difference between a checkpoint's config and the resuming one.
struct ConfigChange {
  std::string key, old_value, new_value;
  bool breaking = false;  // one of resume_breaking_keys()
};
// Keys whose change on --resume makes the run something else than a continuation (a different model,
// reference, data order, prompt set or group size): refused unless run.allow_resume_changes.
const std::vector<std::string>& resume_breaking_keys();
// Keys that may change freely on --resume (length, bookkeeping, logging, parallel layout): not reported.
const std::vector<std::string>& resume_free_keys();
// The differences between two resolved configs (to_yaml text), free keys left out.
std::vector<ConfigChange> config_changes(const std::string& old_yaml, const std::string& new_yaml);

// The data section as load options (field mapping, builtin task difficulty/seed); count and split are the
// caller's (train: task_train_size / train, eval: task_eval_size / held_out).
data::SourceOptions source_options(const Config& cfg, bool eval_split);

// Loads data.train (or the builtin task's train split) and the eval set (possibly empty).
data::Dataset load_train_data(const Config& cfg);
data::Dataset load_eval_data(const Config& cfg);

// Makes every rank hold rank 0's parameters.
void broadcast_parameters(dist::Communicator& comm, model::CausalLM& model);

// Held-out evaluation shared by the ranks (collective): rank r takes problems r, r + W, ...; every metric is a
// problem-weighted mean, so the per-rank sums combine exactly. A rank left without a problem (W > #problems)
// evaluates problem 0 with weight 0, so that every rank reduces the same metric names. Returns "eval/<name>".
MetricMap evaluate_on_ranks(dist::Communicator& comm, const Policy& policy, const data::Dataset& problems,
                            const DataConfig& data_cfg, const EvalOptions& opts);

// Rank 0 writes the checkpoint (save_checkpoint, keeping train.keep_last) and logs it; every rank waits for it.
// Collective (ZeRO-1 gathers the optimizer state first). Returns the checkpoint directory on rank 0, "" elsewhere.
std::string checkpoint_on_rank0(const RunContext& ctx, const Policy& policy, TrainOptimizer* opt,
                                const TrainerState& state);

// The gradient reducer that overlaps the all-reduce with the backward (dist/overlap.h) when it applies: world
// size > 1, the gloo backend, distributed.overlap_grad_reduce, fp32 weights (bf16 ones reduce their fp32 buffers
// after the backward), and not ZeRO-1 (which reduce-scatters in step()).
// Null otherwise: the loop then calls Communicator::all_reduce_gradients after the backward (world > 1).
std::unique_ptr<dist::OverlappedGradReducer> make_grad_reducer(dist::Communicator& comm, const DistributedConfig& d,
                                                               const TrainOptimizer& opt,
                                                               const std::vector<at::Tensor>& params);

// Every rank's flag, OR-ed: true when any rank received SIGINT/SIGTERM.
bool any_rank_stopping(dist::Communicator& comm);

}  // namespace rlvr::trainer
