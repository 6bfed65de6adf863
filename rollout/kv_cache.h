// SlotKvCache: the model::KvCache of the rollout engine. Preallocated per layer as [slots, Hkv, max_len, D]
// (zero-initialised, so masked positions are always finite); a sequence owns one slot for its lifetime. The
// engine declares the rows of each forward (begin_forward), the model's layers append their new keys/values,
// and end_forward advances the lengths. It does not schedule; rollout/engine.cpp does.
// Legend: B = rows of the forward, T = new tokens per row, S = keys attended over, Hkv = kv heads, D = head dim.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "model/kv_cache.h"

namespace rlvr::rollout {

struct KvCacheShape {
  int64_t num_layers = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t slots = 0;     // sequences held at once
  int64_t max_len = 0;   // tokens per slot (prompt + completion)
};

class SlotKvCache final : public model::KvCache {
 public:
  SlotKvCache(const KvCacheShape& shape, at::Device device, at::ScalarType dtype);

  // Declares the next forward: rows are the given slots, in order (a contiguous ascending run avoids copies: the
  // returned K/V are views of the cache). Every row gets T new tokens written at [length(slot), length + T);
  // new_tokens[b] <= T of them are real (a right-padded prefill row) and end_forward advances by that many.
  void begin_forward(const std::vector<int64_t>& slots, int64_t T, const std::vector<int64_t>& new_tokens);
  model::AttentionInputs append(int64_t layer, const at::Tensor& k_new, const at::Tensor& v_new) override;
  void end_forward();

  // dst holds the first n positions of src (a prompt fanned out to its samples); length(dst) = n.
  void copy_prefix(int64_t src, int64_t dst, int64_t n);
  // dst takes over src's content and length; src becomes empty (slot compaction).
  void move_slot(int64_t src, int64_t dst);
  // Several moves at once, {src, dst} each, as move_slot one after another, for moves where no src is another
  // move's dst (compaction: live slots from the end into holes at the front). One gather and one scatter per
  // layer and tensor instead of a copy per move.
  void move_slots(const std::vector<std::pair<int64_t, int64_t>>& moves);
  void clear(int64_t slot) { lengths_.at(slot) = 0; }
  void clear_all();

  int64_t length(int64_t slot) const { return lengths_.at(slot); }
  const KvCacheShape& shape() const { return shape_; }
  int64_t bytes() const;  // K and V over all layers

 private:
  KvCacheShape shape_;
  std::vector<at::Tensor> k_, v_;   // per layer [slots, Hkv, max_len, D]
  std::vector<int64_t> lengths_;    // per slot: cached tokens
  // The forward in flight.
  std::vector<int64_t> rows_, new_tokens_;
  int64_t T_ = 0, S_ = 0, first_ = 0, common_start_ = -1;
  bool contiguous_ = false, in_forward_ = false;
  at::Tensor row_index_;   // [B] int64 slots (when not contiguous)
  at::Tensor write_index_; // [B * Hkv * T] int64 flat row of [slots * Hkv * max_len, D] (when starts differ)
  at::Tensor mask_;        // [B, 1, T, S] bool
};

}  // namespace rlvr::rollout
