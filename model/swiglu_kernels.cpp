// Plain loops the compiler vectorises (built with -O3 -fopenmp-simd, like norm_rope_kernels.cpp). See
// swiglu_kernels.h.
#include "model/swiglu_kernels.h"
#include "model/target_clones.h"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace rlvr::model {

namespace {

// 1 / (1 + exp(-x)). exp by Cephes expf's method: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two for an
// exact reduction), exp(r) by its degree-7 minimax polynomial, times 2^n built in the exponent bits. The argument
// is clamped to [-87.3, 88.7], where 2^n stays a normal float: beyond it the sigmoid is 0 or 1 to fp32 anyway
// (exp(-87.3) = 1.2e-38). A NaN input gives a NaN result through the factor g of the callers.
inline float sigmoid(float x) {
  const float t = std::min(std::max(-x, -87.3f), 88.7f);
  // Round t / ln2 to the nearest integer: adding and taking away 1.5 * 2^23 leaves it (|t / ln2| < 2^22).
  const float nf = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const int32_t n = static_cast<int32_t>(nf);
  const float r = (t - nf * 0.693359375f) - nf * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * z + r + 1.0f;
  const float two_n = std::bit_cast<float>((n + 127) << 23);  // n = 128 (t near 88.7) gives inf: sigmoid 0
  return 1.0f / (1.0f + e_r * two_n);
}

// With s = sigmoid(g) and gh the gradient of h = g s u: du = gh g s, dg = gh u s (1 + g (1 - s)).
inline void swiglu_grad(float g, float u, float gh, float& dg, float& du) {
  const float s = sigmoid(g);
  du = gh * (g * s);
  dg = gh * u * (s * (1.0f + g * (1.0f - s)));
}

}  // namespace

RLVR_CLONES void swiglu_rows(const float* g, const float* u, float* h, int64_t i0, int64_t i1) {
#pragma omp simd
  for (int64_t i = i0; i < i1; ++i) h[i] = g[i] * sigmoid(g[i]) * u[i];
}

RLVR_CLONES void swiglu_backward_rows(const float* g, const float* u, const float* gh, float* dg, float* du,
                                      int64_t i0, int64_t i1) {
#pragma omp simd
  for (int64_t i = i0; i < i1; ++i) swiglu_grad(g[i], u[i], gh[i], dg[i], du[i]);
}

RLVR_CLONES void swiglu_backward_inplace_rows(float* g_du, const float* u, float* gh_dg, int64_t i0, int64_t i1) {
#pragma omp simd
  for (int64_t i = i0; i < i1; ++i) {
    const float g = g_du[i], gh = gh_dg[i];  // both read before either is written
    swiglu_grad(g, u[i], gh, gh_dg[i], g_du[i]);
  }
}

}  // namespace rlvr::model
