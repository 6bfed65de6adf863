// ZeRO-1 for data parallelism: AdamW whose fp32 master weights and moments are sharded over the ranks.
// Each rank owns 1/world_size of the flattened parameters: grads are reduce-scattered (avg) into the
// shard, the global grad norm is all-reduced for clipping, AdamW updates the shard, and the updated shard
// is all-gathered back into every rank's (possibly bf16) parameters. Numerically the same update as
// torch.optim.AdamW on the rank-averaged gradients (tests/trainer/test_dist.cpp checks it).
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "trainer/dist/communicator.h"

namespace rlvr::dist {

struct ShardedAdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;    // decoupled; applied only to parameters with dim >= 2 (not norms, biases)
  double max_grad_norm = 0.0;   // global-norm clipping before the update; 0 = off
  ReduceOp grad_reduce = ReduceOp::avg;  // sum when each rank's loss is already normalised by the global batch
};

class ShardedAdamW {
 public:
  // `params`: the trainable parameters, same order and shapes on every rank (module->parameters()); they
  // must already be equal on every rank (broadcast them from rank 0 first). `comm` must outlive this.
  ShardedAdamW(Communicator& comm, std::vector<at::Tensor> params, ShardedAdamWOptions opts);

  // One update with learning rate `lr` from the current .grad() of every parameter (undefined = zero).
  // Collective: every rank must call it. Returns the global gradient norm before clipping (of the
  // rank-reduced gradient). A non-finite norm leaves parameters and state untouched (the same on every rank).
  double step(double lr);
  // The same with the gradients given apart from the parameters: `grads[i]` is parameter i's gradient (any
  // floating dtype; undefined = zero), e.g. the fp32 accumulation buffers of bf16 parameters.
  double step(double lr, const std::vector<at::Tensor>& grads);
  void zero_grad();  // sets every .grad() to undefined

  int64_t numel() const { return numel_; }          // trainable elements in total
  int64_t shard_numel() const { return shard_; }    // elements this rank owns (numel padded / world)
  int64_t steps() const { return t_; }
  // This rank's optimizer state (for checkpoints): fp32 [shard_numel()] each.
  const at::Tensor& master_shard() const { return master_; }
  const at::Tensor& exp_avg_shard() const { return m_; }
  const at::Tensor& exp_avg_sq_shard() const { return v_; }
  // Checkpoints in the unsharded format: the full moments [numel] fp32 (collective: all-gathers the shards),
  // and back (every rank passes the full moments and keeps its shard; the master weights come from the saved
  // fp32 masters when given, else from the parameters, which a resumed run has just loaded).
  std::pair<at::Tensor, at::Tensor> gather_moments() const;
  at::Tensor gather_masters() const;  // [numel] fp32, the full master weights (collective)
  // `masters` [numel] fp32: the saved master weights; undefined = start them from the parameters.
  void load_moments(const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq, int64_t steps,
                    const at::Tensor& masters = {});

 private:
  at::Tensor flat_grads(const std::vector<at::Tensor>& grads) const;  // [padded numel] fp32, on comm device

  Communicator& comm_;
  std::vector<at::Tensor> params_;
  ShardedAdamWOptions opts_;
  int64_t numel_ = 0, padded_ = 0, shard_ = 0, t_ = 0;
  at::Tensor master_, m_, v_, decay_;  // [shard] fp32 each; decay_ = 1 where weight decay applies
};

}  // namespace rlvr::dist
