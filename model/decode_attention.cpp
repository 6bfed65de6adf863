// Plain loops the compiler vectorises (built with -O3 -fopenmp-simd, for the reduction; an AVX2+FMA clone is picked at load time where the CPU
// has it). See decode_attention.h.
#include "model/decode_attention.h"
#include "model/target_clones.h"

#include <limits>

namespace rlvr::model {

RLVR_CLONES void decode_attention_scores(const DecodeAttentionArgs& a, int64_t bh0, int64_t bh1) {
  const int64_t D = a.D, S = a.S, R = a.R;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t bh = bh0; bh < bh1; ++bh) {
    const int64_t b = bh / a.H, h = bh % a.H;
    const float* K = a.k + b * a.k_sb + h * a.k_sh;
    const float* Q = a.q + bh * R * D;
    const uint8_t* m = a.mask + b * S;
    float* sc = a.scores + bh * R * S;
    for (int64_t s = 0; s < S; ++s) {
      if (!m[s]) {
        for (int64_t r = 0; r < R; ++r) sc[r * S + s] = neg_inf;
        continue;
      }
      const float* ks = K + s * D;
      for (int64_t r = 0; r < R; ++r) {
        const float* qr = Q + r * D;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t d = 0; d < D; ++d) acc += qr[d] * ks[d];
        sc[r * S + s] = acc * a.scale;
      }
    }
  }
}

RLVR_CLONES void decode_attention_values(const DecodeAttentionArgs& a, int64_t bh0, int64_t bh1) {
  const int64_t D = a.D, S = a.S, R = a.R;
  for (int64_t bh = bh0; bh < bh1; ++bh) {
    const int64_t b = bh / a.H, h = bh % a.H;
    const float* V = a.v + b * a.k_sb + h * a.k_sh;
    const float* P = a.scores + bh * R * S;
    float* O = a.out + bh * R * D;
    for (int64_t i = 0; i < R * D; ++i) O[i] = 0.0f;
    for (int64_t s = 0; s < S; ++s) {
      const float* vs = V + s * D;
      for (int64_t r = 0; r < R; ++r) {
        const float p = P[r * S + s];
        if (p == 0.0f) continue;  // masked keys (and underflow) add nothing
        float* o = O + r * D;
        for (int64_t d = 0; d < D; ++d) o[d] += p * vs[d];
      }
    }
  }
}

}  // namespace rlvr::model
