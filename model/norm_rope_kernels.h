// CPU fp32 RMSNorm and rotary embedding on raw pointers, forward and backward, one pass over each row (ATen's
// composition takes 6-8 elementwise ops for the norm and 5 for the rotation, each a full read and write of the
// activations, and twice that in the backward). Row ranges let callers split the work across threads; results
// do not depend on the split. Legend: n = row length (hidden size or head dim), D = head dim, h = D / 2.
#pragma once
#include <cstdint>

namespace rlvr::model {

// Rows [r0, r1) of x [rows, n]: rstd[r] = 1 / sqrt(mean(x_r^2) + eps), y_r = w * (x_r * rstd[r]).
void rms_norm_rows(const float* x, const float* w, float* y, float* rstd, int64_t n, float eps, int64_t r0,
                   int64_t r1);

// The backward for rows [r0, r1), with a = g * w and yhat = x * rstd:
//   dx = rstd * (a - yhat * mean(a * yhat)),  dw_acc += sum over the rows of g * yhat (dw_acc may be null).
void rms_norm_backward_rows(const float* x, const float* w, const float* rstd, const float* g, float* dx,
                            float* dw_acc, int64_t n, int64_t r0, int64_t r1);

// NeoX rotation (HF's rotate_half) of positions [p0, p1) of x [positions, heads, D], with cos/sin [positions, D]
// shared by the heads of a position:
//   forward:  y_i = x_i c_i - x_{i+h} s_i,      y_{i+h} = x_{i+h} c_{i+h} + x_i s_{i+h}    (i < h)
//   backward: dx_i = g_i c_i + g_{i+h} s_{i+h},  dx_{i+h} = g_{i+h} c_{i+h} - g_i s_i
void rope_rows(const float* x, const float* cos, const float* sin, float* y, int64_t heads, int64_t D, bool backward,
               int64_t p0, int64_t p1);

}  // namespace rlvr::model
