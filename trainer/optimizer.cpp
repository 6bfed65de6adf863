// AdamW with decay/no-decay groups, the LR schedule, global-norm clipping and optimizer checkpoints (see
// optimizer.h). The schedule is a pure function of the step so that a resumed run needs only the step count.
#include "trainer/optimizer.h"

#include "trainer/choices.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/zero.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>

#include <fmt/ranges.h>

#include "common/error.h"
#include "common/fs.h"
#include "model/safetensors.h"
#include "trainer/config.h"

namespace rlvr::trainer {

namespace {

constexpr int64_t kFormatVersion = 1;
constexpr const char* kFileName = "optimizer.pt";

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "name[shape]" per optimizer parameter in optimizer order: the identity a checkpoint is checked against.
std::string param_signature(const ParamGroups& g) {
  std::string s;
  for (const auto* group : {&g.decay, &g.no_decay})
    for (const auto& [name, p] : *group) s += fmt::format("{}[{}];", name, fmt::join(p.sizes(), "x"));
  return s;
}

}  // namespace

LrSchedule parse_lr_schedule(const std::string& name) {
  return static_cast<LrSchedule>(choices::index_of("optim.schedule", choices::lr_schedule(), name));
}

const char* to_string(LrSchedule s) { return choices::lr_schedule().at(static_cast<size_t>(s)).c_str(); }

bool is_no_decay(const std::string& name, const torch::Tensor& p) {
  const std::string n = lower(name);
  const bool bias = n.size() >= 5 && n.compare(n.size() - 5, 5, ".bias") == 0;
  return p.dim() <= 1 || bias || n == "bias" || n.find("norm") != std::string::npos;
}

ParamGroups split_param_groups(const NamedParams& params) {
  ParamGroups g;
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    (is_no_decay(name, p) ? g.no_decay : g.decay).emplace_back(name, p);
  }
  return g;
}

double lr_multiplier(LrSchedule s, int64_t step, int64_t warmup_steps, int64_t total_steps, double min_lr_ratio) {
  RLVR_CHECK(step >= 0, "lr schedule: step must be >= 0, got {}", step);
  RLVR_CHECK(warmup_steps >= 0, "optim.warmup_steps must be >= 0, got {}", warmup_steps);
  RLVR_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "optim.min_lr_ratio must be in [0, 1], got {}", min_lr_ratio);
  if (step < warmup_steps) return double(step) / double(warmup_steps);
  if (s == LrSchedule::constant) return 1.0;
  const double p = std::clamp(double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps)),
                              0.0, 1.0);
  const double m = min_lr_ratio;
  if (s == LrSchedule::linear) return m + (1 - m) * (1 - p);
  return m + (1 - m) * 0.5 * (1 + std::cos(M_PI * p));
}

double lr_at(const OptimConfig& o, int64_t step, int64_t total_steps) {
  return o.lr * lr_multiplier(parse_lr_schedule(o.schedule), step, o.warmup_steps, total_steps, o.min_lr_ratio);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const OptimConfig& o, const NamedParams& params) {
  RLVR_CHECK(o.lr >= 0 && o.weight_decay >= 0 && o.eps > 0 && o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 &&
                 o.beta2 < 1,
             "bad AdamW settings: lr {} weight_decay {} betas ({}, {}) eps {}", o.lr, o.weight_decay, o.beta1,
             o.beta2, o.eps);
  auto opts = [&](double wd) {
    // Explicit weight_decay: LibTorch's AdamWOptions default is 1e-2, not 0.
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(wd).amsgrad(false));
  };
  const ParamGroups g = split_param_groups(params);
  auto tensors = [](const NamedParams& ps) {
    std::vector<torch::Tensor> t;
    for (const auto& np : ps) t.push_back(np.second);
    return t;
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!g.decay.empty()) groups.emplace_back(tensors(g.decay), opts(o.weight_decay));
  if (!g.no_decay.empty()) groups.emplace_back(tensors(g.no_decay), opts(0.0));
  RLVR_CHECK(!groups.empty(), "make_adamw: none of the {} parameters requires grad", params.size());
  return std::make_unique<torch::optim::AdamW>(std::move(groups), *opts(o.weight_decay));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

GradNorm clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    grads.push_back(p.grad());
    norms.push_back(torch::linalg_vector_norm(p.grad().to(torch::kFloat32), 2, c10::nullopt, false, c10::nullopt)
                        .to(grads.front().device()));
  }
  GradNorm out;
  if (grads.empty()) return out;
  auto total = torch::linalg_vector_norm(torch::stack(norms), 2, c10::nullopt, false, c10::nullopt);  // 0-d fp32
  out.norm = total.item<double>();  // the one sync
  out.finite = std::isfinite(out.norm);
  if (!out.finite || max_norm <= 0) return out;
  // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6) on the fp32 norm tensor, clamped to 1;
  // the same fp32 arithmetic on the host avoids a second sync.
  const float coef = static_cast<float>(max_norm) / (static_cast<float>(out.norm) + 1e-6f);
  if (coef < 1.0f)
    for (auto& g : grads) g.mul_(static_cast<double>(coef));
  return out;
}

void save_optimizer(const torch::optim::AdamW& opt, const NamedParams& params, int64_t step, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const fs::path path = fs::path(dir) / kFileName;
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  archive.write("rlvr_format_version", torch::tensor(kFormatVersion));
  archive.write("rlvr_schedule_step", torch::tensor(step));
  archive.write("rlvr_param_signature", c10::IValue(param_signature(split_param_groups(params))));
  // Through AtomicFile (temporary name, every write checked, then a rename): a full disk is one Error naming
  // the file. The writer callback never reports a short write to LibTorch, whose zip writer would otherwise
  // throw from its destructor and abort the process.
  AtomicFile out(path);
  archive.save_to([&out](const void* data, size_t n) { return out.write(data, n); });
  out.commit();
}

int64_t load_optimizer(torch::optim::AdamW& opt, const NamedParams& params, const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kFileName).string();
  RLVR_CHECK(std::filesystem::exists(path), "optimizer state {} not found (was the checkpoint saved with it?)", path);
  torch::serialize::InputArchive archive;
  // Load onto the parameters' device (a state saved on CUDA resumes on CPU and vice versa).
  std::optional<torch::Device> device;
  if (!params.empty()) device = params.front().second.device();
  archive.load_from(path, device);
  torch::Tensor version, step;
  c10::IValue signature;
  RLVR_CHECK(archive.try_read("rlvr_format_version", version) && archive.try_read("rlvr_schedule_step", step) &&
                 archive.try_read("rlvr_param_signature", signature),
             "{} is not an rlvr optimizer checkpoint (missing rlvr_* keys)", path);
  RLVR_CHECK(version.item<int64_t>() == kFormatVersion, "{}: format version {}, this build reads {}", path,
             version.item<int64_t>(), kFormatVersion);
  const std::string expected = param_signature(split_param_groups(params));
  RLVR_CHECK(signature.toStringRef() == expected,
             "{}: saved for different parameters (names/shapes in optimizer order).\n saved:    {:.300}\n expected: "
             "{:.300}",
             path, signature.toStringRef(), expected);
  opt.load(archive);
  return step.item<int64_t>();
}

namespace {

constexpr const char* kMastersFile = "master_weights.safetensors";

// Adds a parameter's freshly accumulated .grad() (bf16) into an fp32 buffer and frees it, after every backward
// (Megatron's main_grad): micro-batches then sum in fp32, and .grad() never holds more than one backward's worth.
struct AccumulateFp32Hook : torch::autograd::PostAccumulateGradHook {
  std::function<torch::Tensor&()> slot;  // the fp32 buffer (undefined = not yet allocated this step)
  explicit AccumulateFp32Hook(std::function<torch::Tensor&()> s) : slot(std::move(s)) {}
  void operator()(const torch::autograd::Variable& p) override {
    auto& g = const_cast<torch::autograd::Variable&>(p).mutable_grad();
    if (!g.defined()) return;
    torch::NoGradGuard no_grad;
    torch::Tensor& buf = slot();
    if (buf.defined()) buf.add_(g);
    else buf = g.to(torch::kFloat);  // a new fp32 tensor (g is never fp32 here)
    g.reset();
  }
};

}  // namespace

TrainOptimizer::TrainOptimizer(const OptimConfig& o, NamedParams params, int64_t total_steps,
                               dist::Communicator* zero_comm)
    : lr_(o.lr),
      min_lr_ratio_(o.min_lr_ratio),
      max_grad_norm_(o.max_grad_norm),
      schedule_(parse_lr_schedule(o.schedule)),
      warmup_(o.warmup_steps),
      total_(total_steps),
      params_(std::move(params)) {
  RLVR_CHECK(total_steps >= 0, "total_steps must be >= 0, got {}", total_steps);
  for (const auto& [name, p] : params_) {
    if (!p.requires_grad()) continue;
    RLVR_CHECK(p.scalar_type() == torch::kFloat || p.scalar_type() == torch::kBFloat16 ||
                   p.scalar_type() == torch::kHalf,
               "optimizer: parameter '{}' has dtype {}; fp32, bf16 or fp16 expected", name,
               c10::toString(p.scalar_type()));
    mixed_ = mixed_ || p.scalar_type() != torch::kFloat;
  }
  const bool zero = zero_comm != nullptr && zero_comm->world_size() > 1;
  if (mixed_ && !zero) {
    // The AdamW updates fp32 leaves with the parameters' names and shapes (so the checkpoint signature and
    // the moments' format do not depend on the precision).
    NamedParams master_params;
    for (const auto& [name, p] : params_) {
      if (!p.requires_grad()) continue;
      masters_.push_back(p.detach().to(torch::kFloat).clone().requires_grad_(true));  // [p shape] fp32
      master_params.emplace_back(name, masters_.back());
    }
    opt_ = make_adamw(o, master_params);
  } else {
    opt_ = make_adamw(o, params_);
  }
  const ParamGroups g = split_param_groups(params_);
  for (const auto* group : {&g.decay, &g.no_decay})
    for (const auto& np : *group) tensors_.push_back(np.second);
  lr_multiplier(schedule_, 0, warmup_, total_, min_lr_ratio_);  // validates warmup and min_lr_ratio now
  if (zero) {
    dist::ShardedAdamWOptions zo;
    zo.beta1 = o.beta1;
    zo.beta2 = o.beta2;
    zo.eps = o.eps;
    zo.weight_decay = o.weight_decay;
    zo.max_grad_norm = o.max_grad_norm;
    zo.grad_reduce = dist::ReduceOp::sum;
    // ShardedAdamW decays parameters with dim >= 2, which is is_no_decay's split for every model here.
    for (const auto& [name, p] : params_)
      RLVR_CHECK(is_no_decay(name, p) == (p.dim() < 2), "ZeRO-1: parameter '{}' breaks the decay split", name);
    std::vector<torch::Tensor> flat;
    for (const auto& [name, p] : params_) flat.push_back(p);
    zero_ = std::make_unique<dist::ShardedAdamW>(*zero_comm, flat, zo);  // masters from the parameters
  }
  if (!mixed_) {
    for (const auto& [name, p] : params_)
      if (p.requires_grad()) grad_holders_.push_back(p);
    return;
  }
  // Hooks that move every backward's bf16 gradient into an fp32 buffer: the master's .grad() without ZeRO-1,
  // a per-parameter buffer that ShardedAdamW reduce-scatters with it.
  size_t k = 0;
  if (zero) main_grads_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.requires_grad()) continue;
    std::function<torch::Tensor&()> slot;
    if (zero) {
      slot = [this, i]() -> torch::Tensor& { return main_grads_[i]; };
    } else {
      torch::Tensor m = masters_[k++];
      grad_holders_.push_back(m);
      slot = [m]() mutable -> torch::Tensor& { return m.mutable_grad(); };
    }
    torch::autograd::impl::set_post_acc_grad_hooks(p, std::make_unique<AccumulateFp32Hook>(std::move(slot)));
  }
}

TrainOptimizer::~TrainOptimizer() {
  if (!mixed_) return;
  for (auto& [name, p] : params_)
    if (p.requires_grad()) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

double TrainOptimizer::current_lr() const {
  return lr_ * lr_multiplier(schedule_, step_, warmup_, total_, min_lr_ratio_);
}

std::vector<torch::Tensor> TrainOptimizer::master_weights() const {
  RLVR_CHECK(!zero_, "master_weights(): with ZeRO-1 the masters are sharded over the ranks");
  if (mixed_) return masters_;
  std::vector<torch::Tensor> out;
  for (const auto& [name, p] : params_)
    if (p.requires_grad()) out.push_back(p);
  return out;
}

// Working weights = masters rounded to the parameters' dtype (round to nearest even, as torch's copy_).
void TrainOptimizer::copy_masters_to_params() {
  torch::NoGradGuard no_grad;
  size_t k = 0;
  for (auto& [name, p] : params_)
    if (p.requires_grad()) p.detach().copy_(masters_[k++]);
}

TrainOptimizer::StepResult TrainOptimizer::step() {
  StepResult r;
  if (zero_) {
    // What prepare_save gathered (full moments and masters: 8-12 bytes per parameter) is not kept past a step.
    opt_->state().clear();
    gathered_masters_ = torch::Tensor();
    r.lr = current_lr();
    if (mixed_) {
      std::vector<torch::Tensor> grads;
      for (size_t i = 0; i < params_.size(); ++i)
        if (params_[i].second.requires_grad()) grads.push_back(main_grads_[i]);
      r.grad_norm = zero_->step(r.lr, grads);  // writes the updated masters, rounded, into the parameters
    } else {
      r.grad_norm = zero_->step(r.lr);
    }
    if (!std::isfinite(r.grad_norm)) {
      r.skipped = true;
      r.lr = 0;
      return r;
    }
    ++step_;
    return r;
  }
  const GradNorm gn = clip_grad_norm(mixed_ ? masters_ : tensors_, max_grad_norm_);
  r.grad_norm = gn.norm;
  if (!gn.finite) {
    r.skipped = true;
    zero_grad();
    return r;
  }
  r.lr = current_lr();
  set_lr(*opt_, r.lr);
  opt_->step();
  if (mixed_) copy_masters_to_params();
  ++step_;
  return r;
}

void TrainOptimizer::zero_grad() {
  opt_->zero_grad(/*set_to_none=*/true);  // the masters' (mixed) or the parameters' grads; also ZeRO-1's
  if (!mixed_) return;
  for (auto& [name, p] : params_) p.mutable_grad().reset();
  for (auto& g : main_grads_) g.reset();
}

// The unsharded AdamW state of ZeRO-1's moments: torch's per-parameter exp_avg, exp_avg_sq (fp32) and step.
void TrainOptimizer::prepare_save() {
  if (!zero_) return;
  auto [m, v] = zero_->gather_moments();  // [numel] fp32 each, in params_ order
  if (mixed_) gathered_masters_ = zero_->gather_masters();
  opt_->state().clear();
  int64_t off = 0;
  for (const auto& [name, p] : params_) {
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(zero_->steps());
    st->exp_avg(m.narrow(0, off, p.numel()).view(p.sizes()).to(p.device(), torch::kFloat).clone());
    st->exp_avg_sq(v.narrow(0, off, p.numel()).view(p.sizes()).to(p.device(), torch::kFloat).clone());
    opt_->state()[p.unsafeGetTensorImpl()] = std::move(st);
    off += p.numel();
  }
}

void TrainOptimizer::save(const std::string& dir) const {
  save_optimizer(*opt_, params_, step_, dir);
  if (!mixed_) return;
  std::vector<std::pair<std::string, at::Tensor>> named;
  int64_t off = 0;
  size_t k = 0;
  for (const auto& [name, p] : params_) {
    if (!p.requires_grad()) continue;
    if (zero_) {
      RLVR_CHECK(gathered_masters_.defined(), "TrainOptimizer::save with ZeRO-1: call prepare_save() first");
      named.emplace_back(name, gathered_masters_.narrow(0, off, p.numel()).view(p.sizes()));
      off += p.numel();
    } else {
      named.emplace_back(name, masters_[k++].detach());
    }
  }
  namespace fs = std::filesystem;
  const fs::path path = fs::path(dir) / kMastersFile, tmp = fs::path(dir) / (std::string(kMastersFile) + ".tmp");
  model::write_safetensors(tmp, named, {{"format", "pt"}, {"rlvr", "fp32 master weights"}});
  fs::rename(tmp, path);
  gathered_masters_ = torch::Tensor();
}

std::vector<std::pair<std::string, torch::Tensor>> read_master_weights(const std::string& trainer_state_dir) {
  const auto path = std::filesystem::path(trainer_state_dir) / kMastersFile;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (!std::filesystem::exists(path)) return out;
  model::SafetensorsFile f(path);
  for (const auto& e : f.entries()) out.emplace_back(e.first, f.load(e.first, torch::kFloat));
  return out;
}

void TrainOptimizer::load(const std::string& dir) {
  step_ = load_optimizer(*opt_, params_, dir);
  // The saved fp32 masters, when there are any, checked against the parameters' names and shapes.
  const auto path = std::filesystem::path(dir) / kMastersFile;
  std::optional<model::SafetensorsFile> masters_file;
  if (std::filesystem::exists(path)) masters_file.emplace(path);
  auto saved_master = [&](const std::string& name, const torch::Tensor& p) -> torch::Tensor {
    if (!masters_file) return {};
    RLVR_CHECK(masters_file->contains(name), "{}: no master weight '{}'", path.string(), name);
    torch::Tensor t = masters_file->load(name, torch::kFloat);
    RLVR_CHECK(t.sizes() == p.sizes(), "{}: master weight '{}' is [{}], the parameter is [{}]", path.string(), name,
               fmt::join(t.sizes(), "x"), fmt::join(p.sizes(), "x"));
    return t.to(p.device());
  };
  torch::NoGradGuard no_grad;
  if (!mixed_ && masters_file) {  // fp32 parameters from a bf16 run's checkpoint: take the unrounded weights
    for (auto& [name, p] : params_)
      if (p.requires_grad()) p.detach().copy_(saved_master(name, p));
  }
  if (mixed_ && !zero_) {
    size_t k = 0;
    for (auto& [name, p] : params_) {
      if (!p.requires_grad()) continue;
      torch::Tensor t = saved_master(name, p);
      masters_[k++].detach().copy_(t.defined() ? t : p.detach().to(torch::kFloat));  // same tensors: the state
    }
    copy_masters_to_params();
  }
  if (!zero_) return;
  // Shard what was loaded (a checkpoint of a run with or without ZeRO-1, at any world size).
  std::vector<torch::Tensor> m, v, w;
  int64_t steps = 0;
  for (const auto& [name, p] : params_) {
    if (mixed_) {
      torch::Tensor t = saved_master(name, p);
      w.push_back((t.defined() ? t : p.detach().to(torch::kFloat)).reshape({-1}));
    }
    auto it = opt_->state().find(p.unsafeGetTensorImpl());
    if (it == opt_->state().end()) {  // never updated: zero moments
      m.push_back(torch::zeros({p.numel()}, torch::kFloat));
      v.push_back(torch::zeros({p.numel()}, torch::kFloat));
      continue;
    }
    auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
    m.push_back(st.exp_avg().reshape({-1}).to(torch::kFloat));
    v.push_back(st.exp_avg_sq().reshape({-1}).to(torch::kFloat));
    steps = std::max<int64_t>(steps, st.step());
  }
  zero_->load_moments(torch::cat(m), torch::cat(v), steps, mixed_ ? torch::cat(w) : torch::Tensor());
  opt_->state().clear();
  if (mixed_) {  // the working weights = the loaded masters, rounded (as after a step)
    int64_t off = 0;
    auto all = torch::cat(w);
    for (auto& [name, p] : params_) {
      p.detach().copy_(all.narrow(0, off, p.numel()).view(p.sizes()));
      off += p.numel();
    }
  }
}

}  // namespace rlvr::trainer
