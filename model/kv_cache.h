// The KV-cache interface the model calls during incremental (generation) forwards. Owned here, so the
// model does not know how slots are laid out; implemented in rollout/ (preallocated slots, continuous
// batching). Legend: B = rows of the current forward, T = new tokens per row, S = keys attended over,
// Hkv = key/value heads, D = head dim.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace rlvr::model {

struct AttentionInputs {
  at::Tensor k;     // [B, Hkv, S, D] keys to attend over (cached + new), in the activation dtype
  at::Tensor v;     // [B, Hkv, S, D]
  at::Tensor mask;  // [B, 1, T, S] bool, true = may attend (causal + slot validity); undefined = causal, S == T
};

class KvCache {
 public:
  virtual ~KvCache() = default;
  // Called by each layer once per forward with the new keys/values of the B rows (after RoPE):
  // k_new, v_new [B, Hkv, T, D]. Stores them and returns what attention needs for this layer.
  virtual AttentionInputs append(int64_t layer, const at::Tensor& k_new, const at::Tensor& v_new) = 0;
};

}  // namespace rlvr::model
