// CPU fp32 SwiGLU, h = silu(g) * u = g * sigmoid(g) * u, forward and backward in one pass over the elements
// (ATen's composition: silu, then a product, each a full read and write; the backward silu_backward and two
// products; and autograd keeps g, silu(g) and u where this keeps g and u). The exponential is a polynomial the
// compiler vectorises (a libm call per element would not be), within 2 ulp of expf over its range.
#pragma once
#include <cstdint>

namespace rlvr::model {

// Elements [i0, i1): h = g * sigmoid(g) * u.
void swiglu_rows(const float* g, const float* u, float* h, int64_t i0, int64_t i1);

// Elements [i0, i1), with s = sigmoid(g) and gh the gradient of h:
//   du = gh * g * s,   dg = gh * u * s * (1 + g * (1 - s)).
void swiglu_backward_rows(const float* g, const float* u, const float* gh, float* dg, float* du, int64_t i0,
                          int64_t i1);

// The same in place, for a backward that no longer needs g or gh: g becomes du and gh becomes dg (each element is
// read before it is written).
void swiglu_backward_inplace_rows(float* g_du, const float* u, float* gh_dg, int64_t i0, int64_t i1);

}  // namespace rlvr::model
