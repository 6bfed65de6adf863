// Plain loops the compiler vectorises (built with -O3 -fopenmp-simd, like decode_attention.cpp). See
// norm_rope_kernels.h.
#include "model/norm_rope_kernels.h"
#include "model/target_clones.h"

#include <cmath>

namespace rlvr::model {

RLVR_CLONES void rms_norm_rows(const float* x, const float* w, float* y, float* rstd, int64_t n, float eps,
                               int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const float s = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    rstd[r] = s;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) yr[i] = w[i] * (xr[i] * s);
  }
}

RLVR_CLONES void rms_norm_backward_rows(const float* x, const float* w, const float* rstd, const float* g, float* dx,
                                        float* dw_acc, int64_t n, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * n;
    const float* gr = g + r * n;
    float* dr = dx + r * n;
    const float s = rstd[r];
    float dot = 0.0f;  // sum_i a_i yhat_i
#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < n; ++i) dot += gr[i] * w[i] * (xr[i] * s);
    const float c = dot / static_cast<float>(n);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float yh = xr[i] * s;
      dr[i] = s * (gr[i] * w[i] - yh * c);
    }
    if (dw_acc != nullptr) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dw_acc[i] += gr[i] * (xr[i] * s);
    }
  }
}

RLVR_CLONES void rope_rows(const float* x, const float* cos, const float* sin, float* y, int64_t heads, int64_t D,
                           bool backward, int64_t p0, int64_t p1) {
  const int64_t h = D / 2;
  for (int64_t p = p0; p < p1; ++p) {
    const float* c = cos + p * D;
    const float* s = sin + p * D;
    for (int64_t k = 0; k < heads; ++k) {
      const float* xr = x + (p * heads + k) * D;
      float* yr = y + (p * heads + k) * D;
      if (!backward) {
#pragma omp simd
        for (int64_t i = 0; i < h; ++i) {
          yr[i] = xr[i] * c[i] - xr[i + h] * s[i];
          yr[i + h] = xr[i + h] * c[i + h] + xr[i] * s[i + h];
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < h; ++i) {
          yr[i] = xr[i] * c[i] + xr[i + h] * s[i + h];
          yr[i + h] = xr[i + h] * c[i + h] - xr[i] * s[i];
        }
      }
    }
  }
}

}  // namespace rlvr::model
