// CPU fp32 attention for decode (one new token per row), on raw pointers. The q heads sharing a kv head are R
// query rows of that head; K/V are read in place from the cache (row stride D). ATen's flash attention packs the
// K block for MKL on every (row, head) call: with R = 4 query rows that packing costs more than the math (~15% of
// a decode step on the bench model). Legend: B rows, H kv heads, R query heads per kv head, S keys, D head dim.
#pragma once
#include <cstdint>

namespace rlvr::model {

struct DecodeAttentionArgs {
  int64_t B, H, R, S, D;
  const float* q;                 // [B, H, R, D] contiguous
  const float* k;                 // element (b, h, s, d) at k[b * k_sb + h * k_sh + s * D + d]
  const float* v;                 // same strides as k
  int64_t k_sb, k_sh;
  const uint8_t* mask;            // [B, S]: nonzero = may attend; every row has at least one
  float scale;
  float* scores;                  // [B, H, R, S] workspace
  float* out;                     // [B, H, R, D]
};

// Scores for rows*heads bh in [bh0, bh1): scale * q.k, -inf where masked.
void decode_attention_scores(const DecodeAttentionArgs& a, int64_t bh0, int64_t bh1);
// out = probs @ V for bh in [bh0, bh1); `scores` must hold the softmax probabilities by then.
void decode_attention_values(const DecodeAttentionArgs& a, int64_t bh0, int64_t bh1);

}  // namespace rlvr::model
