// SlotKvCache: preallocated per-layer K/V slots, writes by narrow copy (equal start lengths) or one indexed row
// copy (ragged lengths), reads as views when the rows are a contiguous run of slots. Masks are built once per forward
// and shared by every layer. Legend: B = rows, T = new tokens per row, S = keys, Hkv = kv heads, D = head dim.
#include "rollout/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace rlvr::rollout {

namespace {

// cache_rows[index[i]] = rows[i] for the [n] indices (distinct, in range: built by begin_forward). On CPU, with
// the dtype of the cache, one memcpy of D elements per row: ATen's index_copy_ runs its element loop on one thread
// (~5% of a decode step on the quickstart model, for 1,024 rows of 32 floats per layer).
void write_rows(const at::Tensor& cache_rows, const at::Tensor& index, const at::Tensor& rows) {
  if (!cache_rows.device().is_cpu() || rows.scalar_type() != cache_rows.scalar_type() ||
      !cache_rows.is_contiguous()) {
    cache_rows.index_copy_(0, index, rows.to(cache_rows.scalar_type()));
    return;
  }
  auto src = rows.contiguous();  // [n, D]
  auto idx = index.contiguous();
  const int64_t n = idx.numel();
  RLVR_CHECK(src.dim() == 2 && src.size(0) == n && src.size(1) == cache_rows.size(1),
             "KV cache: {} rows of {} for {} write positions of {}", src.size(0), src.size(1), n, cache_rows.size(1));
  const size_t row_bytes = static_cast<size_t>(src.size(1)) * src.element_size();
  const auto* ip = idx.const_data_ptr<int64_t>();
  const auto* sp = static_cast<const char*>(src.const_data_ptr());
  auto* dp = static_cast<char*>(cache_rows.data_ptr());
  for (int64_t i = 0; i < n; ++i) std::memcpy(dp + ip[i] * row_bytes, sp + i * row_bytes, row_bytes);
}

}  // namespace

SlotKvCache::SlotKvCache(const KvCacheShape& shape, at::Device device, at::ScalarType dtype) : shape_(shape) {
  RLVR_CHECK(shape.num_layers > 0 && shape.kv_heads > 0 && shape.head_dim > 0 && shape.slots > 0 && shape.max_len > 0,
             "KV cache shape must be positive: layers {} kv_heads {} head_dim {} slots {} max_len {}",
             shape.num_layers, shape.kv_heads, shape.head_dim, shape.slots, shape.max_len);
  auto opts = at::TensorOptions().device(device).dtype(dtype);
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    k_.push_back(at::zeros({shape.slots, shape.kv_heads, shape.max_len, shape.head_dim}, opts));  // [slots, Hkv, L, D]
    v_.push_back(at::zeros({shape.slots, shape.kv_heads, shape.max_len, shape.head_dim}, opts));
  }
  lengths_.assign(shape.slots, 0);
}

int64_t SlotKvCache::bytes() const {
  return 2 * shape_.num_layers * shape_.slots * shape_.kv_heads * shape_.max_len * shape_.head_dim *
         static_cast<int64_t>(k_.front().element_size());
}

void SlotKvCache::clear_all() { std::fill(lengths_.begin(), lengths_.end(), 0); }

void SlotKvCache::begin_forward(const std::vector<int64_t>& slots, int64_t T, const std::vector<int64_t>& new_tokens) {
  RLVR_CHECK(!in_forward_, "KV cache: begin_forward while a forward is in flight");
  RLVR_CHECK(!slots.empty() && T >= 1, "KV cache: a forward needs rows and tokens (rows {}, T {})", slots.size(), T);
  RLVR_CHECK(new_tokens.size() == slots.size(), "KV cache: {} new-token counts for {} rows", new_tokens.size(),
             slots.size());
  const int64_t B = static_cast<int64_t>(slots.size());
  std::vector<int64_t> starts(B);
  int64_t max_start = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = slots[b];
    RLVR_CHECK(s >= 0 && s < shape_.slots, "KV cache: slot {} out of range [0, {})", s, shape_.slots);
    starts[b] = lengths_[s];
    RLVR_CHECK(starts[b] + T <= shape_.max_len, "KV cache: slot {} holds {} tokens, {} more exceed its {} positions",
               s, starts[b], T, shape_.max_len);
    RLVR_CHECK(new_tokens[b] >= 0 && new_tokens[b] <= T, "KV cache: row {} has {} real tokens of {}", b,
               new_tokens[b], T);
    max_start = std::max(max_start, starts[b]);
  }
  rows_ = slots;
  new_tokens_ = new_tokens;
  T_ = T;
  S_ = max_start + T;
  first_ = slots[0];
  contiguous_ = true;
  for (int64_t b = 1; b < B; ++b) contiguous_ = contiguous_ && slots[b] == first_ + b;
  common_start_ = starts[0];
  for (int64_t b = 1; b < B; ++b) {
    if (starts[b] != common_start_) common_start_ = -1;
  }

  const auto dev = k_.front().device();
  auto start_t = at::tensor(starts, at::kLong).to(dev);                                     // [B]
  auto q_pos = start_t.unsqueeze(1) + at::arange(T, start_t.options());                     // [B, T]
  auto k_pos = at::arange(S_, start_t.options());                                           // [S]
  mask_ = k_pos.view({1, 1, S_}).le(q_pos.unsqueeze(2)).unsqueeze(1);                       // [B, 1, T, S] bool
  if (!contiguous_) row_index_ = at::tensor(slots, at::kLong).to(dev);                       // [B]
  if (!(contiguous_ && common_start_ >= 0)) {
    auto slot_t = at::tensor(slots, at::kLong).to(dev).view({B, 1, 1});
    auto head = at::arange(shape_.kv_heads, start_t.options()).view({1, shape_.kv_heads, 1});
    auto pos = q_pos.view({B, 1, T});
    write_index_ = ((slot_t * shape_.kv_heads + head) * shape_.max_len + pos).reshape({-1});  // [B * Hkv * T]
  }
  in_forward_ = true;
}

model::AttentionInputs SlotKvCache::append(int64_t layer, const at::Tensor& k_new, const at::Tensor& v_new) {
  RLVR_CHECK(in_forward_, "KV cache: append without begin_forward (layer {})", layer);
  RLVR_CHECK(layer >= 0 && layer < shape_.num_layers, "KV cache: layer {} out of range [0, {})", layer,
             shape_.num_layers);
  const int64_t B = static_cast<int64_t>(rows_.size());
  RLVR_CHECK(k_new.dim() == 4 && k_new.size(0) == B && k_new.size(1) == shape_.kv_heads && k_new.size(2) == T_ &&
                 k_new.size(3) == shape_.head_dim,
             "KV cache: layer {} got keys {} for rows {} x kv_heads {} x T {} x head_dim {}", layer,
             c10::str(k_new.sizes()), B, shape_.kv_heads, T_, shape_.head_dim);
  auto& K = k_[layer];  // [slots, Hkv, max_len, D]
  auto& V = v_[layer];
  if (contiguous_ && common_start_ >= 0) {
    K.narrow(0, first_, B).narrow(2, common_start_, T_).copy_(k_new);
    V.narrow(0, first_, B).narrow(2, common_start_, T_).copy_(v_new);
  } else {
    const int64_t rows = shape_.slots * shape_.kv_heads * shape_.max_len;
    write_rows(K.view({rows, shape_.head_dim}), write_index_, k_new.reshape({-1, shape_.head_dim}));
    write_rows(V.view({rows, shape_.head_dim}), write_index_, v_new.reshape({-1, shape_.head_dim}));
  }
  model::AttentionInputs out;
  if (contiguous_) {
    out.k = K.narrow(0, first_, B).narrow(2, 0, S_);  // [B, Hkv, S, D] view
    out.v = V.narrow(0, first_, B).narrow(2, 0, S_);
  } else {
    out.k = K.narrow(2, 0, S_).index_select(0, row_index_);  // [B, Hkv, S, D] copy
    out.v = V.narrow(2, 0, S_).index_select(0, row_index_);
  }
  out.mask = mask_;
  return out;
}

void SlotKvCache::end_forward() {
  RLVR_CHECK(in_forward_, "KV cache: end_forward without begin_forward");
  for (size_t b = 0; b < rows_.size(); ++b) lengths_[rows_[b]] += new_tokens_[b];
  in_forward_ = false;
}

void SlotKvCache::copy_prefix(int64_t src, int64_t dst, int64_t n) {
  RLVR_CHECK(src >= 0 && src < shape_.slots && dst >= 0 && dst < shape_.slots, "KV cache: copy {} -> {} out of [0, {})",
             src, dst, shape_.slots);
  RLVR_CHECK(n >= 0 && n <= lengths_[src], "KV cache: copy of {} tokens from slot {} holding {}", n, src,
             lengths_[src]);
  if (src != dst && n > 0) {
    for (int64_t l = 0; l < shape_.num_layers; ++l) {
      k_[l][dst].narrow(1, 0, n).copy_(k_[l][src].narrow(1, 0, n));  // [Hkv, n, D]
      v_[l][dst].narrow(1, 0, n).copy_(v_[l][src].narrow(1, 0, n));
    }
  }
  lengths_[dst] = n;
}

void SlotKvCache::move_slot(int64_t src, int64_t dst) {
  if (src == dst) return;
  copy_prefix(src, dst, lengths_.at(src));
  lengths_[src] = 0;
}

void SlotKvCache::move_slots(const std::vector<std::pair<int64_t, int64_t>>& moves) {
  if (moves.size() <= 1) {
    for (auto [src, dst] : moves) move_slot(src, dst);
    return;
  }
  std::vector<int64_t> src, dst;
  std::vector<bool> is_dst(shape_.slots, false);
  int64_t n = 0;  // positions to carry: the longest source
  for (auto [s, d] : moves) {
    RLVR_CHECK(s >= 0 && s < shape_.slots && d >= 0 && d < shape_.slots && s != d,
               "KV cache: move {} -> {} out of [0, {}) or onto itself", s, d, shape_.slots);
    RLVR_CHECK(!is_dst[d], "KV cache: slot {} is the destination of two moves", d);
    is_dst[d] = true;
    src.push_back(s), dst.push_back(d);
    n = std::max(n, lengths_[s]);
  }
  for (int64_t s : src) RLVR_CHECK(!is_dst[s], "KV cache: slot {} is both a source and a destination", s);
  if (n > 0) {
    const auto dev = k_.front().device();
    auto si = at::tensor(src, at::kLong).to(dev), di = at::tensor(dst, at::kLong).to(dev);  // [moves]
    for (int64_t l = 0; l < shape_.num_layers; ++l) {
      for (auto* t : {&k_[l], &v_[l]}) {
        auto head = t->narrow(2, 0, n);               // [slots, Hkv, n, D]: beyond a length is never read
        head.index_copy_(0, di, head.index_select(0, si));
      }
    }
  }
  for (size_t m = 0; m < src.size(); ++m) lengths_[dst[m]] = lengths_[src[m]], lengths_[src[m]] = 0;
}

}  // namespace rlvr::rollout
