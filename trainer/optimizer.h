// The optimizer side of a training step: AdamW with a decay and a no-decay parameter group, the learning
// rate schedule (warmup + constant/linear/cosine), global-norm gradient clipping with non-finite detection,
// and save/load of the optimizer state with the schedule step. No gradient all-reduce here (the caller
// reduces gradients across ranks before clip_grad_norm, so every rank computes the same norm).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace rlvr {
struct OptimConfig;
}
namespace rlvr::dist {
class Communicator;
class ShardedAdamW;
}

namespace rlvr::trainer {

using NamedParams = std::vector<std::pair<std::string, torch::Tensor>>;

// optim.schedule
enum class LrSchedule { constant, linear, cosine };
LrSchedule parse_lr_schedule(const std::string& name);  // ConfigError listing constant|linear|cosine
const char* to_string(LrSchedule s);

// True for parameters that get no weight decay: 1-D or 0-D tensors (norm weights, biases), or a name ending
// in ".bias" or containing "norm" (case-insensitive; covers "model.norm.weight", "input_layernorm.weight").
bool is_no_decay(const std::string& name, const torch::Tensor& p);

struct ParamGroups {
  NamedParams decay;     // weight_decay = optim.weight_decay (matrices: linear and embedding weights)
  NamedParams no_decay;  // weight_decay = 0 (norms, biases)
};
// Splits the parameters that require grad (others are dropped), keeping their order.
ParamGroups split_param_groups(const NamedParams& params);

// The multiplier of optim.lr for optimizer step `step` (0-based: the number of steps already taken),
// HF/verl convention (get_{constant,linear,cosine}_schedule_with_warmup with min_lr_ratio):
//   step < warmup:  step / warmup                         (so step 0 uses lr 0 when warmup > 0)
//   after: p = clamp((step - warmup) / max(1, total - warmup), 0, 1), m = min_lr_ratio
//     constant: 1;  linear: m + (1 - m) * (1 - p);  cosine: m + (1 - m) * 0.5 * (1 + cos(pi * p))
// total_steps: optimizer steps of the whole run (train.steps * ppo_epochs * mini_batches). Steps past the
// end stay at the floor m. total_steps may be 0 for constant.
double lr_multiplier(LrSchedule s, int64_t step, int64_t warmup_steps, int64_t total_steps, double min_lr_ratio);
// lr_at = optim.lr * lr_multiplier(parse(optim.schedule), step, optim.warmup_steps, total, optim.min_lr_ratio).
double lr_at(const OptimConfig& o, int64_t step, int64_t total_steps);

// AdamW (decoupled decay, torch semantics: p -= lr * wd * p, then the Adam update) over two groups:
// group 0 = decay params with optim.weight_decay, group 1 = no-decay params with 0. Empty groups are
// omitted (group indices then shift; use set_lr, which sets every group). betas/eps from OptimConfig,
// initial lr = optim.lr (call set_lr before each step).
std::unique_ptr<torch::optim::AdamW> make_adamw(const OptimConfig& o, const NamedParams& params);
void set_lr(torch::optim::Optimizer& opt, double lr);

struct GradNorm {
  double norm = 0;     // global L2 norm of all gradients BEFORE clipping (NaN/inf if any grad is non-finite)
  bool finite = true;  // false: gradients untouched, the caller must skip the step (zero_grad, count it)
};
// Global-norm clipping as torch.nn.utils.clip_grad_norm_ (scale = max_norm / (norm + 1e-6), applied only when
// < 1). max_norm <= 0: only measure. Parameters without grad are skipped. One device sync (the norm).
GradNorm clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// Save/load the optimizer state (AdamW moments, per-parameter step counts, group hyper-parameters) and the
// schedule step to dir/optimizer.pt (torch::serialize archive; the directory is created). The parameter
// names are stored and checked on load (same names, same order, same shapes), so a resumed run continues
// bit-exactly on CPU. load returns the saved schedule step. Errors name the file and the mismatch.
void save_optimizer(const torch::optim::AdamW& opt, const NamedParams& params, int64_t step,
                    const std::string& dir);
int64_t load_optimizer(torch::optim::AdamW& opt, const NamedParams& params, const std::string& dir);

// The step as the loop uses it: owns the AdamW and the schedule position.
//   opt.zero_grad(); for micro-batches: loss.backward();
//   [opt.reduces_gradients() or all-reduce the .grad() of opt.grad_tensors()]; auto r = opt.step();
//
// Precision (docs/precision.md). The optimizer always updates fp32 weights with fp32 moments:
//  - fp32 parameters: the parameters are the master weights (no copy); exactly torch.optim.AdamW.
//  - lower-precision parameters (bf16 working weights): an fp32 master copy of every trainable parameter (or
//    only this rank's shard of them with ZeRO-1), fp32 moments, and an fp32 gradient buffer per parameter. A
//    post-accumulate-grad hook adds each backward's bf16 .grad() into the fp32 buffer and frees it (Megatron's
//    main_grad), so micro-batches accumulate and ranks reduce in fp32; step() clips and updates the fp32
//    masters and copies them, rounded, into the working parameters.
// With a ZeRO-1 communicator (distributed.zero_stage 1, world > 1) the AdamW state is sharded over the ranks
// (dist::ShardedAdamW): step() reduce-scatters the gradients (sum: the losses are globally normalised) itself,
// so the caller must not all-reduce them, and every rank must call step() and save_collective().
class TrainOptimizer {
 public:
  // total_steps: optimizer steps of the run (for the decay). Throws ConfigError on a bad schedule name.
  TrainOptimizer(const OptimConfig& o, NamedParams params, int64_t total_steps,
                 dist::Communicator* zero_comm = nullptr);
  ~TrainOptimizer();
  bool reduces_gradients() const { return zero_ != nullptr; }  // ZeRO-1: step() reduces the gradients
  // True when the parameters are not fp32: fp32 masters, moments and gradient buffers are kept apart from them.
  bool has_masters() const { return mixed_; }
  // The tensors whose .grad() holds this step's gradient (what a data-parallel all-reduce must reduce): the
  // fp32 masters with bf16 parameters, the parameters themselves with fp32 ones. Not with ZeRO-1.
  const std::vector<torch::Tensor>& grad_tensors() const { return grad_holders_; }
  // The fp32 master weights in params() order (the parameters themselves when they are fp32). Not with
  // ZeRO-1 and more than one rank (the masters are sharded; a checkpoint gathers them).
  std::vector<torch::Tensor> master_weights() const;  // Collective (every rank, before rank 0's save): ZeRO-1 gathers the sharded moments into the unsharded
  // AdamW state, so that a checkpoint has the same format (and resumes at any world size and stage).
  void prepare_save();

  struct StepResult {
    double grad_norm = 0;  // pre-clip global norm
    double lr = 0;         // the lr used (0 when skipped)
    bool skipped = false;  // non-finite gradient: no update, schedule step not advanced, grads zeroed
  };
  // Clip (optim.max_grad_norm), set lr = lr_at(step), AdamW step, advance the schedule step.
  StepResult step();
  void zero_grad();  // sets grads to None (set_to_none)
  int64_t step_count() const { return step_; }
  double current_lr() const;  // lr_at(step_count())
  // dir/optimizer.pt (moments, step), and with bf16 parameters also dir/master_weights.safetensors (the fp32
  // masters under the parameters' names, loadable as an fp32 HF checkpoint's weights).
  void save(const std::string& dir) const;
  // Restores the state and the step count. With bf16 parameters the masters come from master_weights.safetensors
  // (a checkpoint without it, e.g. of an fp32 run, starts them from the parameters); with fp32 parameters a
  // master_weights.safetensors that is present overwrites the (rounded) parameters.
  void load(const std::string& dir);
  torch::optim::AdamW& adamw() { return *opt_; }
  const NamedParams& params() const { return params_; }

 private:
  double lr_, min_lr_ratio_, max_grad_norm_;
  LrSchedule schedule_;
  int64_t warmup_, total_, step_ = 0;
  NamedParams params_;
  std::vector<torch::Tensor> tensors_;
  std::unique_ptr<torch::optim::AdamW> opt_;
  std::unique_ptr<dist::ShardedAdamW> zero_;
  bool mixed_ = false;
  std::vector<torch::Tensor> masters_;       // [param shape] fp32 leaves, params_ order (mixed, no ZeRO-1)
  std::vector<torch::Tensor> main_grads_;    // [param shape] fp32, params_ order (mixed + ZeRO-1; undefined = 0)
  std::vector<torch::Tensor> grad_holders_;  // see grad_tensors()
  // [numel] fp32: ZeRO-1 masters gathered by prepare_save (mixed); released by save() and the next step().
  mutable torch::Tensor gathered_masters_;
  void copy_masters_to_params();
};

// The fp32 master weights saved in a checkpoint's trainer_state/ (name -> [shape] fp32 CPU tensor, sorted by
// name); empty when the run had fp32 parameters (its HF weights are the masters).
std::vector<std::pair<std::string, torch::Tensor>> read_master_weights(const std::string& trainer_state_dir);

}  // namespace rlvr::trainer
