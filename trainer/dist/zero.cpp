// ShardedAdamW (ZeRO-1): see zero.h. Layout: the parameters are flattened in order into one fp32 vector of
// numel elements, zero-padded to a multiple of world_size; rank r owns elements [r * shard, (r + 1) * shard).
#include "trainer/dist/zero.h"

#include <cmath>

#include "common/error.h"

namespace rlvr::dist {

ShardedAdamW::ShardedAdamW(Communicator& comm, std::vector<at::Tensor> params, ShardedAdamWOptions opts)
    : comm_(comm), opts_(opts) {
  for (auto& p : params) {
    if (p.defined() && p.requires_grad()) params_.push_back(p);
  }
  RLVR_CHECK(!params_.empty(), "ShardedAdamW: no trainable parameters");
  std::vector<at::Tensor> flat, mask;
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(comm.device());
  for (auto& p : params_) {
    RLVR_CHECK(p.is_floating_point(), "ShardedAdamW: parameter of dtype {} is not floating",
               c10::toString(p.scalar_type()));
    flat.push_back(p.detach().reshape({-1}).to(f32));
    mask.push_back(at::full({p.numel()}, p.dim() >= 2 ? 1.0 : 0.0, f32));
  }
  const int64_t W = comm.world_size();
  at::Tensor all = at::cat(flat);  // [numel]
  numel_ = all.numel();
  padded_ = (numel_ + W - 1) / W * W;
  shard_ = padded_ / W;
  at::Tensor all_mask = at::cat(mask);  // [numel]
  if (padded_ > numel_) {
    all = at::cat({all, at::zeros({padded_ - numel_}, f32)});            // [padded]
    all_mask = at::cat({all_mask, at::zeros({padded_ - numel_}, f32)});  // [padded]
  }
  master_ = all.narrow(0, comm.rank() * shard_, shard_).clone();  // [shard]
  decay_ = all_mask.narrow(0, comm.rank() * shard_, shard_).clone();
  m_ = at::zeros({shard_}, f32);
  v_ = at::zeros({shard_}, f32);
}

at::Tensor ShardedAdamW::flat_grads(const std::vector<at::Tensor>& grads) const {
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(comm_.device());
  RLVR_CHECK(grads.size() == params_.size(), "ShardedAdamW: {} gradients for {} parameters", grads.size(),
             params_.size());
  std::vector<at::Tensor> g;
  g.reserve(params_.size() + 1);
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    g.push_back(grads[i].defined() ? grads[i].reshape({-1}).to(f32) : at::zeros({p.numel()}, f32));
  }
  if (padded_ > numel_) g.push_back(at::zeros({padded_ - numel_}, f32));
  return at::cat(g);  // [padded]
}

double ShardedAdamW::step(double lr) {
  std::vector<at::Tensor> grads;
  grads.reserve(params_.size());
  for (const auto& p : params_) grads.push_back(p.grad());
  return step(lr, grads);
}

double ShardedAdamW::step(double lr, const std::vector<at::Tensor>& grads) {
  at::NoGradGuard no_grad;
  at::Tensor g = comm_.reduce_scatter(flat_grads(grads), opts_.grad_reduce);  // [shard] rank-reduced
  double norm = std::sqrt(comm_.all_reduce_scalar(g.pow(2).sum().item<double>(), ReduceOp::sum));
  if (!std::isfinite(norm)) return norm;  // every rank sees the same norm: all skip
  if (opts_.max_grad_norm > 0) {
    double coef = opts_.max_grad_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
    if (coef < 1.0) g.mul_(coef);
  }
  ++t_;
  const double bc1 = 1.0 - std::pow(opts_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(opts_.beta2, static_cast<double>(t_));
  if (opts_.weight_decay != 0.0) master_.mul_(1.0 - lr * opts_.weight_decay * decay_);
  m_.mul_(opts_.beta1).add_(g, 1.0 - opts_.beta1);
  v_.mul_(opts_.beta2).addcmul_(g, g, 1.0 - opts_.beta2);
  at::Tensor denom = (v_.sqrt() / std::sqrt(bc2)).add_(opts_.eps);  // [shard]
  master_.addcdiv_(m_, denom, -lr / bc1);
  // Every rank gets every updated shard and writes it into its parameters (cast to their dtype).
  at::Tensor full = comm_.all_gather(master_).view({-1});  // [padded]
  int64_t off = 0;
  for (auto& p : params_) {
    p.detach().copy_(full.narrow(0, off, p.numel()).view(p.sizes()));
    off += p.numel();
  }
  return norm;
}

std::pair<at::Tensor, at::Tensor> ShardedAdamW::gather_moments() const {
  at::Tensor m = comm_.all_gather(m_).view({-1}).narrow(0, 0, numel_);  // [numel]
  at::Tensor v = comm_.all_gather(v_).view({-1}).narrow(0, 0, numel_);
  return {m, v};
}

at::Tensor ShardedAdamW::gather_masters() const {
  return comm_.all_gather(master_).view({-1}).narrow(0, 0, numel_);  // [numel]
}

void ShardedAdamW::load_moments(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t steps,
                                const at::Tensor& masters) {
  RLVR_CHECK(exp_avg.numel() == numel_ && exp_avg_sq.numel() == numel_,
             "ShardedAdamW: moments of {} / {} elements for {} parameters", exp_avg.numel(), exp_avg_sq.numel(), numel_);
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(comm_.device());
  auto shard_of = [&](const at::Tensor& full) {
    at::Tensor x = full.reshape({-1}).to(f32);
    if (padded_ > numel_) x = at::cat({x, at::zeros({padded_ - numel_}, f32)});
    return x.narrow(0, comm_.rank() * shard_, shard_).clone();
  };
  m_ = shard_of(exp_avg);
  v_ = shard_of(exp_avg_sq);
  if (masters.defined()) {
    RLVR_CHECK(masters.numel() == numel_, "ShardedAdamW: {} master weights for {} parameters", masters.numel(),
               numel_);
    master_ = shard_of(masters);
  } else {
    std::vector<at::Tensor> flat;
    for (auto& p : params_) flat.push_back(p.detach().reshape({-1}).to(f32));
    master_ = shard_of(at::cat(flat));
  }
  t_ = steps;
}

void ShardedAdamW::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
}

}  // namespace rlvr::dist
