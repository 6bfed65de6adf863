// The decoder math, following transformers' modeling_qwen2 / modeling_llama / modeling_qwen3 (eager path):
// RMSNorm in fp32 then weight * x.to(input dtype); NeoX rotate_half RoPE with fp32 tables (computed once per
// forward); SDPA with native GQA, causal without a mask for right-padded rows and with an explicit bool mask
// otherwise (left padding, KV-cache offsets). Gradient checkpointing is a custom autograd Function per layer.
// Legend: B = batch rows, T = new tokens per row, S = keys attended over, H = hidden, D = head dim.
#include "model/decoder.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "common/error.h"
#include "common/host_memory.h"
#include "model/decode_attention.h"
#include "model/norm_rope_kernels.h"
#include "model/parallel.h"
#include "model/swiglu_kernels.h"

namespace rlvr::model {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias, const at::TensorOptions& o) {
  weight = register_parameter("weight", at::empty({out, in}, o));
  if (with_bias) bias = register_parameter("bias", at::empty({out}, o));
}

// oneDNN's prepacked linear, registered by libtorch_cpu as mkldnn::_reorder_linear_weight / _linear_pointwise
// (what torch.compile's CPU weight freezing uses). MKL's sgemm copies the whole weight into its panel layout on
// every call: at decode batch sizes that copy is ~30% of the GEMM time.
at::Tensor pack_linear_weight(const at::Tensor& weight) {
  if (!at::hasMKLDNN() || !weight.device().is_cpu() || weight.scalar_type() != at::kFloat || weight.dim() != 2) return {};
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mkldnn::_reorder_linear_weight", "")
                             .typed<at::Tensor(const at::Tensor&, std::optional<int64_t>)>();
  at::NoGradGuard ng;
  return op.call(weight.contiguous(), std::nullopt);
}

at::Tensor packed_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& bias) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, std::string_view,
                            c10::List<std::optional<at::Scalar>>, std::optional<std::string_view>)>();
  std::optional<at::Tensor> b;
  if (bias.defined()) b = bias;
  return op.call(x.contiguous(), packed, b, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) const {
  if (packed.defined() && !at::GradMode::is_enabled() && x.scalar_type() == at::kFloat && x.device().is_cpu() &&
      weight._version() == packed_version) {
    return packed_linear(x, packed, bias);
  }
  return at::linear(x, weight, bias);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, const at::TensorOptions& o) : eps(eps_) {
  weight = register_parameter("weight", at::empty({dim}, o));
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The one-pass CPU kernels of norm_rope_kernels.h take fp32 CPU tensors; other dtypes and devices keep ATen's
// composition (bf16 needs HF's cast order, CUDA its own kernels).
bool cpu_fp32(const at::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == at::kFloat; }

constexpr int64_t kElementGrain = 32768;  // elements per thread-split unit, as ATen's grain

// Rows of n elements per thread-split unit.
int64_t row_grain(int64_t n) { return std::max<int64_t>(1, kElementGrain / std::max<int64_t>(n, 1)); }

// x [.., n] contiguous -> y; rstd [rows] filled.
at::Tensor rms_norm_cpu(const at::Tensor& x, const at::Tensor& w, double eps, at::Tensor& rstd) {
  const int64_t n = x.size(-1), rows = x.numel() / n;
  auto y = at::empty_like(x);
  rstd = at::empty({rows}, x.options());
  const float* xp = x.const_data_ptr<float>();
  const float* wp = w.const_data_ptr<float>();
  float* yp = y.mutable_data_ptr<float>();
  float* rp = rstd.mutable_data_ptr<float>();
  parallel_chunks(0, rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    rms_norm_rows(xp, wp, yp, rp, n, static_cast<float>(eps), r0, r1);
  });
  return y;
}

// dw is summed per block of kNormBlock rows, then over the blocks in order: the same sum for any thread count.
constexpr int64_t kNormBlock = 64;

struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, double eps) {
    auto xc = x.contiguous();
    at::Tensor rstd;
    auto y = rms_norm_cpu(xc, w, eps, rstd);
    ctx->save_for_backward({xc, w, rstd});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &rstd = saved[2];
    auto g = grads[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n, blocks = (rows + kNormBlock - 1) / kNormBlock;
    const bool need_w = ctx->needs_input_grad(1);
    auto dx = at::empty_like(x);
    auto partial = need_w ? at::zeros({blocks, n}, x.options()) : at::Tensor();  // [blocks, n]
    const float *xp = x.const_data_ptr<float>(), *wp = w.const_data_ptr<float>(), *rp = rstd.const_data_ptr<float>();
    const float* gp = g.const_data_ptr<float>();
    float* dp = dx.mutable_data_ptr<float>();
    float* pp = need_w ? partial.mutable_data_ptr<float>() : nullptr;
    parallel_chunks(0, blocks, std::max<int64_t>(1, row_grain(n) / kNormBlock), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        rms_norm_backward_rows(xp, wp, rp, gp, dp, pp ? pp + b * n : nullptr, n, b * kNormBlock,
                               std::min(rows, (b + 1) * kNormBlock));
      }
    });
    return {dx, need_w ? partial.sum(0) : at::Tensor(), at::Tensor()};
  }
};

// x [P, heads, D] contiguous, cos/sin [P, D] contiguous fp32.
at::Tensor rope_cpu(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool backward) {
  const int64_t D = x.size(-1), heads = x.size(-2), P = x.numel() / (heads * D);
  auto y = at::empty_like(x);
  const float *xp = x.const_data_ptr<float>(), *cp = cos.const_data_ptr<float>(), *sp = sin.const_data_ptr<float>();
  float* yp = y.mutable_data_ptr<float>();
  parallel_chunks(0, P, row_grain(heads * D), [&](int64_t p0, int64_t p1) {
    rope_rows(xp, cp, sp, yp, heads, D, backward, p0, p1);
  });
  return y;
}

struct RopeFn : torch::autograd::Function<RopeFn> {  // the tables are not differentiated (positions are data)
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    return rope_cpu(x.contiguous(), cos, sin, false);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    return {rope_cpu(grads[0].contiguous(), saved[0], saved[1], true), at::Tensor(), at::Tensor()};
  }
};

bool needs_graph(const at::Tensor& a, const at::Tensor& b = {}) {
  return at::GradMode::is_enabled() && (a.requires_grad() || (b.defined() && b.requires_grad()));
}

// g, u contiguous, same shape, fp32 CPU.
at::Tensor swiglu_cpu(const at::Tensor& g, const at::Tensor& u) {
  auto h = at::empty_like(g);
  const float *gp = g.const_data_ptr<float>(), *up = u.const_data_ptr<float>();
  float* hp = h.mutable_data_ptr<float>();
  parallel_chunks(0, g.numel(), kElementGrain, [&](int64_t i0, int64_t i1) { swiglu_rows(gp, up, hp, i0, i1); });
  return h;
}

struct SwigluFn : torch::autograd::Function<SwigluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& u) {
    auto gc = g.contiguous(), uc = u.contiguous();
    ctx->save_for_backward({gc, uc});
    return swiglu_cpu(gc, uc);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &g = saved[0], &u = saved[1];
    auto gh = grads[0].contiguous();
    auto dg = at::empty_like(g), du = at::empty_like(u);
    const float *gp = g.const_data_ptr<float>(), *up = u.const_data_ptr<float>(), *hp = gh.const_data_ptr<float>();
    float *dgp = dg.mutable_data_ptr<float>(), *dup = du.mutable_data_ptr<float>();
    parallel_chunks(0, g.numel(), kElementGrain,
                    [&](int64_t i0, int64_t i1) { swiglu_backward_rows(gp, up, hp, dgp, dup, i0, i1); });
    return {dg, du};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  if (cpu_fp32(x) && cpu_fp32(weight) && x.dim() >= 1 && x.numel() > 0 && weight.dim() == 1 &&
      weight.size(0) == x.size(-1)) {
    auto w = weight.is_contiguous() ? weight : weight.contiguous();
    if (needs_graph(x, weight)) return RmsNormFn::apply(x, w, eps);
    at::Tensor rstd;
    return rms_norm_cpu(x.contiguous(), w, eps, rstd);
  }
  auto h = x.to(at::kFloat);                                // [.., dim] fp32
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());                    // HF order: cast back, then scale
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) const { return rms_norm(x, weight, eps); }

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  if (cpu_fp32(gate) && cpu_fp32(up) && gate.sizes() == up.sizes() && gate.numel() > 0) {
    return needs_graph(gate, up) ? SwigluFn::apply(gate, up) : swiglu_cpu(gate.contiguous(), up.contiguous());
  }
  return at::silu(gate) * up;
}

EmbeddingImpl::EmbeddingImpl(int64_t n, int64_t dim, const at::TensorOptions& o) {
  weight = register_parameter("weight", at::empty({n, dim}, o));
}

Rope::Rope(const ModelArgs& a) {
  const int64_t d = a.head_dim;
  auto idx = at::arange(0, d, 2, at::kLong).to(at::kFloat) / static_cast<double>(d);  // [D/2]
  inv_freq = 1.0 / at::pow(a.rope_theta, idx);                                          // [D/2] fp32
  if (a.rope_scaling_factor > 0) {  // Llama 3: divide low frequencies by factor, interpolate the middle band
    const double factor = a.rope_scaling_factor, lo = a.rope_low_freq_factor, hi = a.rope_high_freq_factor;
    const double ctx = static_cast<double>(a.rope_original_max_position);
    auto wavelen = 2 * M_PI / inv_freq;
    auto scaled = at::where(wavelen > ctx / lo, inv_freq / factor, inv_freq);
    auto smooth = (ctx / wavelen - lo) / (hi - lo);
    auto smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    auto medium = (wavelen >= ctx / hi).logical_and(wavelen <= ctx / lo);
    inv_freq = at::where(medium, smoothed, scaled);
  }
}

std::pair<at::Tensor, at::Tensor> Rope::operator()(const at::Tensor& positions) {
  if (inv_freq.device() != positions.device()) inv_freq = inv_freq.to(positions.device());
  auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq;  // [B, T, D/2] fp32
  auto emb = at::cat({freqs, freqs}, -1);                           // [B, T, D]
  return {emb.cos(), emb.sin()};
}

namespace {

at::Tensor rotate_half(const at::Tensor& x) {  // [.., D] -> [.., D]: (x1, x2) -> (-x2, x1)
  const int64_t h = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep) {  // [B, Hkv, S, D] -> [B, Hkv * n_rep, S, D]
  if (n_rep == 1) return x;
  const auto B = x.size(0), Hkv = x.size(1), S = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, Hkv, n_rep, S, D}).reshape({B, Hkv * n_rep, S, D});
}

// Decode attention on CPU fp32 through decode_attention.h: qg [B, Hkv, R, D]; k, v [B, Hkv, S, D] views of the
// cache with rows of D contiguous; mask [B, 1, 1, S] bool. Returns [B, Hkv, R, D], or undefined when the inputs
// do not have that layout (the caller then uses SDPA).
at::Tensor decode_attention_cpu(const at::Tensor& qg, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                                double scale) {
  const int64_t B = qg.size(0), H = qg.size(1), R = qg.size(2), D = qg.size(3), S = k.size(2);
  if (!qg.device().is_cpu() || qg.scalar_type() != at::kFloat || k.scalar_type() != at::kFloat ||
      v.scalar_type() != at::kFloat || k.stride(3) != 1 || k.stride(2) != D || k.strides() != v.strides() ||
      mask.numel() != B * S) {
    return {};
  }
  auto q = qg.contiguous();
  auto m = mask.reshape({B, S}).to(at::kByte).contiguous();  // [B, S]
  auto scores = at::empty({B, H, R, S}, q.options());
  auto out = at::empty({B, H, R, D}, q.options());
  DecodeAttentionArgs a{B, H, R, S, D, q.const_data_ptr<float>(), k.const_data_ptr<float>(), v.const_data_ptr<float>(),
                        k.stride(0), k.stride(1), m.const_data_ptr<uint8_t>(), static_cast<float>(scale),
                        scores.mutable_data_ptr<float>(), out.mutable_data_ptr<float>()};
  parallel_chunks(0, B * H, 1, [&](int64_t b0, int64_t b1) { decode_attention_scores(a, b0, b1); });
  auto probs = at::softmax(scores, -1);  // [B, H, R, S]: ATen's vectorised exp
  a.scores = probs.mutable_data_ptr<float>();
  parallel_chunks(0, B * H, 1, [&](int64_t b0, int64_t b1) { decode_attention_values(a, b0, b1); });
  return out;
}

}  // namespace

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  // The kernel reads one table row per (b, t): tables that broadcast instead take the composition.
  const bool tables_match = x.dim() == 4 && cos.dim() == 3 && cos.sizes() == sin.sizes() && cos.size(0) == x.size(0) &&
                            cos.size(1) == x.size(1) && cos.size(2) == x.size(3) && x.size(3) % 2 == 0;
  if (cpu_fp32(x) && cpu_fp32(cos) && cpu_fp32(sin) && x.numel() > 0 && tables_match) {
    auto c = cos.contiguous(), s = sin.contiguous();  // [B, T, D]
    return needs_graph(x) ? RopeFn::apply(x, c, s) : rope_cpu(x.contiguous(), c, s, false);
  }
  auto c = cos.unsqueeze(2).to(x.scalar_type()), s = sin.unsqueeze(2).to(x.scalar_type());  // [B, T, 1, D]
  return x * c + rotate_half(x) * s;
}

AttentionImpl::AttentionImpl(const ModelArgs& a, const at::TensorOptions& o)
    : n_heads(a.num_attention_heads), n_kv_heads(a.num_key_value_heads), head_dim(a.head_dim) {
  const bool o_bias = a.attention_bias && a.model_type != "qwen2";  // Qwen2: q/k/v bias only
  q_proj = register_module("q_proj", Linear(a.hidden_size, n_heads * head_dim, a.attention_bias, o));
  k_proj = register_module("k_proj", Linear(a.hidden_size, n_kv_heads * head_dim, a.attention_bias, o));
  v_proj = register_module("v_proj", Linear(a.hidden_size, n_kv_heads * head_dim, a.attention_bias, o));
  o_proj = register_module("o_proj", Linear(n_heads * head_dim, a.hidden_size, o_bias, o));
  if (a.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim, a.rms_norm_eps, o));
    k_norm = register_module("k_norm", RMSNorm(head_dim, a.rms_norm_eps, o));
  }
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& mask_in, KvCache* cache, int64_t layer) {
  const auto B = x.size(0), T = x.size(1);
  auto q = q_proj(x).view({B, T, n_heads, head_dim});     // [B, T, Hq, D]
  auto k = k_proj(x).view({B, T, n_kv_heads, head_dim});  // [B, T, Hkv, D]
  auto v = v_proj(x).view({B, T, n_kv_heads, head_dim}).transpose(1, 2);  // [B, Hkv, T, D]
  const auto act = v.scalar_type();  // activation dtype (bf16 under autocast)
  if (q_norm) {
    q = q_norm(q).to(act);
    k = k_norm(k).to(act);
  }
  auto c = cos.to(act), s = sin.to(act);        // [B, T, D]: once for q and k (a no-op in fp32)
  q = apply_rope(q, c, s).transpose(1, 2);      // [B, Hq, T, D]
  k = apply_rope(k, c, s).transpose(1, 2);      // [B, Hkv, T, D]

  at::Tensor mask = mask_in;
  if (cache != nullptr) {
    auto in = cache->append(layer, k, v);
    k = in.k;  // [B, Hkv, S, D]
    v = in.v;
    mask = in.mask;  // [B, 1, T, S] bool or undefined (causal, S == T)
    // A row with no visible key would give NaN (0/0); let it see everything instead (its output is unused).
    if (mask.defined()) mask = mask.logical_or(mask.logical_not().all(-1, /*keepdim=*/true));
  }
  const double sdpa_scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  if (const int64_t n_rep = n_heads / n_kv_heads; cache != nullptr && T == 1 && mask.defined()) {
    // Decode (rollout): the n_rep query heads of one kv head attend as n_rep query rows of that head,
    // reading the cache in place; repeat_kv would copy all of K/V every layer and step (~8x this attention on CPU).
    auto qg = q.view({B, n_kv_heads, n_rep, head_dim});  // [B, Hkv, n_rep, D]: query heads grouped per kv head
    auto og = decode_attention_cpu(qg, k, v, mask, sdpa_scale);
    if (!og.defined()) {
      og = at::scaled_dot_product_attention(qg, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false,
                                            sdpa_scale);  // mask [B, 1, 1, S] broadcasts over the n_rep rows
    }
    return o_proj(og.reshape({B, 1, n_heads * head_dim}));  // [B, 1, H]
  }
  const int64_t S = k.size(2);
  // Native grouped-query attention (no copy of K/V per query head) where the kernel has it: CPU's flash kernel
  // with or without a mask, CUDA's flash kernel (no mask). CUDA's memory-efficient kernel, the one a mask
  // allows, does not take enable_gqa (SDPA would fall back to the O(T^2)-memory math kernel): repeat there.
  const bool native_gqa = !mask.defined() || q.device().is_cpu();
  if (!native_gqa) {
    k = repeat_kv(k, n_heads / n_kv_heads);  // [B, Hq, S, D]
    v = repeat_kv(v, n_heads / n_kv_heads);
  }
  at::Tensor out;
  if (mask.defined()) {
    out = at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false, sdpa_scale,
                                           /*enable_gqa=*/native_gqa);
  } else {
    // is_causal is top-left aligned: only valid when queries and keys are the same positions.
    RLVR_CHECK(S == T, "attention without a mask needs S == T, got S {} T {}", S, T);
    out = at::scaled_dot_product_attention(q, k, v, {}, /*dropout_p=*/0.0, /*is_causal=*/true, sdpa_scale,
                                           /*enable_gqa=*/true);
  }                                                                    // [B, Hq, T, D]
  return o_proj(out.transpose(1, 2).reshape({B, T, n_heads * head_dim}));  // [B, T, H]
}

MlpImpl::MlpImpl(const ModelArgs& a, const at::TensorOptions& o) {
  gate_proj = register_module("gate_proj", Linear(a.hidden_size, a.intermediate_size, false, o));
  up_proj = register_module("up_proj", Linear(a.hidden_size, a.intermediate_size, false, o));
  down_proj = register_module("down_proj", Linear(a.intermediate_size, a.hidden_size, false, o));
}

namespace {

// Elements of one [rows, intermediate] MLP activation held at once where nothing keeps the activations for a
// backward (no-grad forwards, the checkpointed backward). CPU: 8 MB fp32 (431 tokens of Qwen2.5-0.5B), GEMMs of a
// few hundred rows lose nothing there. CUDA: 2^26 (128 MB bf16, 3,542 tokens of a 7B), so that the GEMMs stay
// large enough for the GPU (untested: no GPU has run it).
int64_t mlp_chunk_elements(const at::Device& device) { return device.is_cpu() ? int64_t{1} << 21 : int64_t{1} << 26; }

// Rows per chunk for n_rows tokens of an MLP with intermediate size I: chunk_rows when positive, else as many as
// keep one activation within mlp_chunk_elements, balanced so that the last chunk is not much shorter.
int64_t mlp_chunk_rows(int64_t n_rows, int64_t I, int64_t chunk_rows, const at::Device& device) {
  const int64_t budget = mlp_chunk_elements(device);
  const int64_t chunks = chunk_rows > 0 ? (n_rows + chunk_rows - 1) / chunk_rows
                                        : std::max<int64_t>(1, (n_rows * I + budget - 1) / budget);
  return std::max<int64_t>(1, (n_rows + chunks - 1) / chunks);
}

}  // namespace

at::Tensor MlpImpl::forward(const at::Tensor& x, int64_t chunk_rows) const {
  auto mlp = [&](const at::Tensor& in) {
    return down_proj->forward(swiglu(gate_proj->forward(in), up_proj->forward(in)));
  };
  const int64_t H = x.size(-1), N = H > 0 ? x.numel() / H : 0;
  const int64_t rows =
      at::GradMode::is_enabled() ? N : mlp_chunk_rows(N, gate_proj->weight.size(0), chunk_rows, x.device());
  if (rows >= N) return mlp(x);  // [B, T, H]
  // No graph to keep: one chunk of tokens at a time, so no [tokens, intermediate] activation exists whole.
  auto xf = x.reshape({N, H});
  at::Tensor out;  // [N, H], in the dtype the first chunk comes out in (autocast's included)
  for (int64_t r0 = 0; r0 < N; r0 += rows) {
    const int64_t n = std::min(rows, N - r0);
    auto y = mlp(xf.narrow(0, r0, n));  // [n, H]
    if (!out.defined()) out = at::empty({N, y.size(1)}, y.options());
    out.narrow(0, r0, n).copy_(y);
  }
  return out.view(x.sizes());
}

DecoderLayerImpl::DecoderLayerImpl(const ModelArgs& a, const at::TensorOptions& o) {
  self_attn = register_module("self_attn", Attention(a, o));
  mlp = register_module("mlp", Mlp(a, o));
  input_layernorm = register_module("input_layernorm", RMSNorm(a.hidden_size, a.rms_norm_eps, o));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(a.hidden_size, a.rms_norm_eps, o));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& mask, KvCache* cache, int64_t layer, int64_t mlp_rows) {
  // CheckpointedLayer's backward recomputes these two halves separately: keep the two in step.
  auto h = x + self_attn->forward(input_layernorm(x), cos, sin, mask, cache, layer);  // [B, T, H]
  return h + mlp->forward(post_attention_layernorm(h), mlp_rows);
}

BackboneImpl::BackboneImpl(const ModelArgs& a, const at::TensorOptions& o) {
  embed_tokens = register_module("embed_tokens", Embedding(a.vocab_size, a.hidden_size, o));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < a.num_hidden_layers; ++i) layers->push_back(DecoderLayer(a, o));
  norm = register_module("norm", RMSNorm(a.hidden_size, a.rms_norm_eps, o));
}

namespace {

// Autograd Function inputs must be defined tensors: "no mask" (causal) travels as an empty tensor.
at::Tensor as_mask(const at::Tensor& m) { return m.numel() == 0 ? at::Tensor() : m; }

// Replays the forward's CUDA autocast state on the backward's thread (autocast is thread-local) while in scope.
class AutocastReplay {
 public:
  AutocastReplay(bool enabled, at::ScalarType dtype)
      : prev_(at::autocast::is_autocast_enabled(at::kCUDA)), prev_dtype_(at::autocast::get_autocast_dtype(at::kCUDA)) {
    at::autocast::set_autocast_enabled(at::kCUDA, enabled);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  }
  ~AutocastReplay() {
    at::autocast::set_autocast_enabled(at::kCUDA, prev_);
    at::autocast::set_autocast_dtype(at::kCUDA, prev_dtype_);
  }
  AutocastReplay(const AutocastReplay&) = delete;
  AutocastReplay& operator=(const AutocastReplay&) = delete;

 private:
  bool prev_;
  at::ScalarType prev_dtype_;
};

// Gradients of the parameters that require them, keyed by tensor; fp32 sums of the chunks' parts.
using ParamGrads = std::unordered_map<const c10::TensorImpl*, at::Tensor>;

void add_grad(ParamGrads& grads, const at::Tensor& param, at::Tensor g) {
  if (!g.defined()) return;
  if (g.scalar_type() != at::kFloat) g = g.to(at::kFloat);
  auto [it, fresh] = grads.try_emplace(param.unsafeGetTensorImpl(), g);  // g is a fresh tensor: safe to add into
  if (!fresh) it->second.add_(g);
}

// grads[param] += a @ b where param requires a gradient: in fp32 operands one GEMM into the sum in place (no
// [out, in] temporary), else the product in the operands' dtype, then added in fp32.
void add_mm_grad(ParamGrads& grads, const at::Tensor& param, const at::Tensor& a, const at::Tensor& b) {
  if (!param.requires_grad()) return;
  auto it = grads.find(param.unsafeGetTensorImpl());
  if (it != grads.end() && a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat) {
    it->second.addmm_(a, b);
    return;
  }
  add_grad(grads, param, a.mm(b));
}

// The MLP half of a checkpointed layer's backward: h [.., H] is the post-attention residual (detached), dout the
// layer's output gradient. Returns d(mlp(norm(h)))/dh and adds the norm's and the three projections' gradients
// into grads. Row chunks of mlp_chunk_rows tokens, so no [tokens, intermediate] activation or gradient exists
// whole. Per chunk: the norm with a graph; gate and up through the modules (autocast's dtype included) without
// one; then by hand, in the dtype gate and up came out in: down_proj's two gradients (its forward GEMM, whose
// output the backward never reads, is not rerun), SwiGLU's backward (over gate's output and SwiGLU's output
// gradient, so a chunk holds three [rows, intermediate] tensors at most), gate's and up's gradients. The weights'
// gradients are summed in fp32 (in place where fp32); autograd runs only through the norm.
at::Tensor mlp_backward_chunked(DecoderLayerImpl& layer, const at::Tensor& h, const at::Tensor& dout,
                                int64_t chunk_rows, bool autocast, at::ScalarType autocast_dtype, ParamGrads& grads) {
  auto& mlp = *layer.mlp;
  RLVR_CHECK(!mlp.down_proj->bias.defined() && !mlp.gate_proj->bias.defined() && !mlp.up_proj->bias.defined(),
             "mlp_backward_chunked: the MLP has no bias in any supported model");
  const auto& norm_w = layer.post_attention_layernorm->weight;
  const auto &wg = mlp.gate_proj->weight, &wu = mlp.up_proj->weight, &wd = mlp.down_proj->weight;
  const int64_t H = h.size(-1), N = h.numel() / H;
  const int64_t rows = mlp_chunk_rows(N, wg.size(0), chunk_rows, h.device());
  auto hf = h.reshape({N, H}), gf = dout.reshape({N, H});
  auto dh = at::empty_like(hf);  // [N, H]
  std::vector<at::Tensor> wrt{at::Tensor()};  // the chunk's input, then the norm's weight if it needs a gradient
  if (norm_w.requires_grad()) wrt.push_back(norm_w);
  at::Tensor wg_act, wu_act, wd_act;  // the three weights in the GEMMs' dtype (cast once)
  for (int64_t r0 = 0; r0 < N; r0 += rows) {
    const int64_t n = std::min(rows, N - r0);
    wrt[0] = hf.narrow(0, r0, n).detach().requires_grad_(true);  // [n, H]
    at::Tensor x, g, u;                                           // [n, H] with the norm's graph; [n, I] twice
    {
      at::AutoGradMode grad(true);
      AutocastReplay replay(autocast, autocast_dtype);
      x = layer.post_attention_layernorm->forward(wrt[0]);
      at::NoGradGuard no_graph;
      g = mlp.gate_proj->forward(x).contiguous();
      u = mlp.up_proj->forward(x).contiguous();
    }
    const auto act = g.scalar_type();
    if (!wd_act.defined()) wg_act = wg.to(act), wu_act = wu.to(act), wd_act = wd.to(act);
    auto go = gf.narrow(0, r0, n).to(act);  // [n, H]
    add_mm_grad(grads, wd, go.t(), swiglu(g, u));  // d down_proj.weight = go^T silu(g) u; SwiGLU's output dies here
    auto dg = go.mm(wd_act);  // [n, I]: SwiGLU's output gradient, then (over it) gate's output gradient
    at::Tensor du;            // [n, I]: up's output gradient
    if (cpu_fp32(g) && cpu_fp32(u) && cpu_fp32(dg)) {
      float *gp = g.mutable_data_ptr<float>(), *dgp = dg.mutable_data_ptr<float>();
      const float* up = u.const_data_ptr<float>();
      parallel_chunks(0, g.numel(), kElementGrain,
                      [&](int64_t i0, int64_t i1) { swiglu_backward_inplace_rows(gp, up, dgp, i0, i1); });
      du = std::move(g);  // g's buffer now holds du
    } else {              // as silu_backward: in fp32, rounded once to the activation dtype
      auto gf32 = g.to(at::kFloat), sg = at::sigmoid(gf32), da32 = dg.to(at::kFloat);
      du = (da32 * gf32 * sg).to(act);
      dg = (da32 * u.to(at::kFloat) * sg * (1 + gf32 * (1 - sg))).to(act);
    }
    g.reset(), u.reset();
    auto xa = x.detach().to(act);
    add_mm_grad(grads, wg, dg.t(), xa);          // d gate_proj.weight = dg^T x
    add_mm_grad(grads, wu, du.t(), xa);          // d up_proj.weight = du^T x
    auto dx = dg.mm(wg_act).addmm_(du, wu_act);  // [n, H]
    dg.reset(), du.reset();
    auto gr = torch::autograd::grad({x}, wrt, {dx.to(x.scalar_type())}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    dh.narrow(0, r0, n).copy_(gr[0]);
    if (wrt.size() > 1) add_grad(grads, norm_w, gr[1]);
  }
  return dh.view(h.sizes());
}

// Recomputes one decoder layer in backward instead of keeping its activations. inputs = {x, cos, sin, mask,
// layer parameters...}; the parameters are inputs so that their gradients flow through this node. The backward
// recomputes the attention half with a graph and runs the MLP half chunk by chunk (mlp_backward_chunked).
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                at::TensorList inputs, int64_t layer_ptr, int64_t mlp_rows) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(layer_ptr);
    ctx->saved_data["layer"] = layer_ptr;
    ctx->saved_data["mlp_rows"] = mlp_rows;
    // Autocast is thread-local and backward runs on another thread: record it to replay the same math.
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(at::kCUDA);
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(at::autocast::get_autocast_dtype(at::kCUDA));
    ctx->save_for_backward({inputs[0], inputs[1], inputs[2], inputs[3]});
    return {layer->forward(inputs[0], inputs[1], inputs[2], as_mask(inputs[3]), nullptr, 0, mlp_rows)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    auto saved = ctx->get_saved_variables();
    auto params = layer->parameters();
    torch::autograd::variable_list result(4 + params.size() + 2);  // x, cos, sin, mask, params, layer_ptr, mlp_rows
    if (!grad_out[0].defined()) return result;
    // What the layers above freed from the heaps stays resident otherwise (host memory: CPU training only).
    if (saved[0].device().is_cpu()) release_free_host_memory();
    const bool ac = ctx->saved_data["autocast"].toBool();
    const auto ac_dtype = static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt());
    auto x = saved[0].detach().requires_grad_(true);
    at::Tensor h;  // [B, T, H]: x + attention(norm(x)), with its graph
    {
      at::AutoGradMode grad(true);
      AutocastReplay replay(ac, ac_dtype);
      h = x + layer->self_attn->forward(layer->input_layernorm(x), saved[1], saved[2], as_mask(saved[3]), nullptr, 0);
    }
    ParamGrads grads;
    auto dh = mlp_backward_chunked(*layer, h.detach(), grad_out[0], ctx->saved_data["mlp_rows"].toInt(), ac, ac_dtype,
                                   grads).add_(grad_out[0]);
    std::vector<at::Tensor> wrt{x};  // x and the attention half's parameters
    for (const auto& p : layer->self_attn->parameters())
      if (p.requires_grad()) wrt.push_back(p);
    if (layer->input_layernorm->weight.requires_grad()) wrt.push_back(layer->input_layernorm->weight);
    auto g = torch::autograd::grad({h}, wrt, {dh}, /*retain_graph=*/false, /*create_graph=*/false,
                                   /*allow_unused=*/true);
    if (ac) at::autocast::clear_cache();
    result[0] = g[0];
    for (size_t i = 1; i < wrt.size(); ++i) grads.try_emplace(wrt[i].unsafeGetTensorImpl(), g[i]);
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = grads.find(params[i].unsafeGetTensorImpl());
      if (it == grads.end() || !it->second.defined()) continue;
      result[4 + i] = it->second.to(params[i].scalar_type());
    }
    return result;
  }
};

}  // namespace

at::Tensor training_attention_mask(const at::Tensor& attention_mask) {
  const auto T = attention_mask.size(1);
  auto opts = at::TensorOptions().dtype(at::kBool).device(attention_mask.device());
  auto causal = at::ones({T, T}, opts).tril();                     // [T, T]
  auto keys = attention_mask.to(at::kBool).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, T]
  auto eye = at::eye(T, opts);                                     // [T, T]
  return causal.logical_and(keys).logical_or(eye);                 // [B, 1, T, T]
}

CausalLMImpl::CausalLMImpl(const ModelArgs& a, const at::TensorOptions& o) : rope(a) {
  model = register_module("model", Backbone(a, o));
  if (!a.tie_word_embeddings) lm_head = register_module("lm_head", Linear(a.hidden_size, a.vocab_size, false, o));
  for (auto& m : *model->layers) layer_list.push_back(std::dynamic_pointer_cast<DecoderLayerImpl>(m));
}

namespace {

// True when every row is real tokens followed only by padding (1..1 0..0): causal attention is then exact for
// the real tokens (they never see a later position, so never a padding key), and no mask is needed.
bool right_padded(const at::Tensor& attention_mask) {  // [B, T]
  if (attention_mask.size(1) < 2) return true;
  const int64_t T = attention_mask.size(1);
  auto m = attention_mask.ne(0);                                             // [B, T] bool
  return m.narrow(1, 1, T - 1).le(m.narrow(1, 0, T - 1)).all().item<bool>();  // never 0 then 1
}

// A tied embedding's lookup and its use as the lm_head in one autograd node: inputs {weight, ids}, outputs
// {embedded [B, T, H], weight (the alias the lm_head uses)}. Its backward runs once both gradients are in, and adds
// the lookup's rows into the lm_head's dense [V, H] gradient in place, where autograd would form the lookup's own
// dense [V, H] gradient and add the two (one [V, H] temporary: 544 MB for Qwen2.5-0.5B in fp32). The rows are
// summed per distinct id first (embedding_dense_backward over the distinct ids: sorted, so deterministic on CUDA
// too), then added at distinct rows.
struct TiedEmbeddingFn : torch::autograd::Function<TiedEmbeddingFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& ids) {
    ctx->save_for_backward({ids});
    ctx->saved_data["rows"] = weight.size(0);
    return {at::embedding(weight, ids), weight};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto ids = ctx->get_saved_variables()[0].reshape({-1});  // [N]
    const int64_t V = ctx->saved_data["rows"].toInt();
    at::Tensor ge = grads[0], gw = std::move(grads[1]);  // [.., H], [V, H]
    if (!ge.defined()) return {gw, at::Tensor()};
    const int64_t H = ge.size(-1);
    ge = ge.reshape({-1, H});  // [N, H]
    // In place only into a dense gradient that nothing else holds: its one other reference is the custom-function
    // wrapper's copy of this node's inputs.
    const bool reuse = gw.defined() && gw.layout() == at::kStrided && gw.is_contiguous() &&
                       gw.sizes() == at::IntArrayRef{V, H} && !gw.is_inference() && gw.use_count() <= 2 &&
                       gw.storage().use_count() == 1;
    if (!reuse) {
      auto dense = at::embedding_dense_backward(ge, ids, V, /*padding_idx=*/-1, /*scale_grad_by_freq=*/false);
      return {gw.defined() ? gw + dense : dense, at::Tensor()};
    }
    auto [distinct, inverse] = at::_unique(ids, /*sorted=*/true, /*return_inverse=*/true);  // [U], [N]
    auto rows = at::embedding_dense_backward(ge, inverse, distinct.size(0), -1, false);   // [U, H]
    gw.index_add_(0, distinct, rows.to(gw.scalar_type()));
    return {gw, at::Tensor()};
  }
};

}  // namespace

at::Tensor CausalLMImpl::hidden(const at::Tensor& tokens, const at::Tensor& positions,
                                const at::Tensor& attention_mask, KvCache* cache, const ForwardOptions& opts) {
  RLVR_CHECK(tokens.dim() == 2, "forward: tokens must be [B, T], got {} dims", tokens.dim());
  const auto B = tokens.size(0), T = tokens.size(1);
  const auto dev = model->embed_tokens->weight.device();
  auto tok = tokens.to(dev, at::kLong);
  auto pos = positions.defined() ? positions.to(dev, at::kLong)
                                 : at::arange(T, at::TensorOptions().dtype(at::kLong).device(dev)).expand({B, T});
  RLVR_CHECK(pos.sizes() == tok.sizes(), "forward: positions {} must match tokens {}", c10::str(pos.sizes()),
             c10::str(tok.sizes()));
  auto [cos, sin] = rope(pos);  // [B, T, D] fp32, shared by every layer
  at::Tensor mask;              // undefined: plain causal (S == T)
  if (opts.block_mask.defined()) {
    RLVR_CHECK(cache == nullptr, "forward: block_mask is for training forwards (no KV cache)");
    RLVR_CHECK(opts.block_mask.dim() == 4 && opts.block_mask.size(0) == B && opts.block_mask.size(1) == 1 &&
                   opts.block_mask.size(2) == T && opts.block_mask.size(3) == T,
               "forward: block_mask must be [{}, 1, {}, {}], got {}", B, T, T, c10::str(opts.block_mask.sizes()));
    mask = opts.block_mask.to(dev, at::kBool);
  } else if (cache == nullptr && attention_mask.defined()) {
    RLVR_CHECK(attention_mask.sizes() == tok.sizes(), "forward: attention_mask {} must match tokens {}",
               c10::str(attention_mask.sizes()), c10::str(tok.sizes()));
    auto am = attention_mask.to(dev);
    if (!right_padded(am)) mask = training_attention_mask(am);  // [B, 1, T, T]
  }
  at::Tensor h;  // [B, T, H]
  const auto& E = model->embed_tokens->weight;
  if (!lm_head && opts.head_weight != nullptr && at::GradMode::is_enabled() && E.requires_grad()) {
    auto out = TiedEmbeddingFn::apply(E, tok);
    h = out[0];
    *opts.head_weight = out[1];
  } else {
    h = at::embedding(E, tok);
    if (opts.head_weight != nullptr) *opts.head_weight = lm_head_weight();
  }
  const bool ckpt = opts.gradient_checkpointing && cache == nullptr && at::GradMode::is_enabled();
  for (size_t i = 0; i < layer_list.size(); ++i) {
    auto& layer = layer_list[i];
    if (ckpt) {
      torch::autograd::variable_list in{h, cos, sin, mask.defined() ? mask : at::empty({0}, at::kBool)};
      for (auto& p : layer->parameters()) in.push_back(p);
      // A TensorList (not a std::vector) so that autograd sees each tensor as an input of the node.
      h = CheckpointedLayer::apply(at::TensorList(in), reinterpret_cast<int64_t>(layer.get()),
                                   opts.mlp_chunk_rows)[0];
    } else {
      h = layer->forward(h, cos, sin, mask, cache, static_cast<int64_t>(i), opts.mlp_chunk_rows);
    }
  }
  if (opts.logit_positions.defined()) {  // [B] -> h [B, 1, H]
    RLVR_CHECK(opts.logit_positions.dim() == 1 && opts.logit_positions.size(0) == B,
               "forward: logit_positions must be [{}], got {}", B, c10::str(opts.logit_positions.sizes()));
    auto idx = opts.logit_positions.to(dev, at::kLong).view({B, 1, 1}).expand({B, 1, h.size(2)});
    h = h.gather(1, idx);
  }
  return model->norm(h);  // [B, T, H]
}

const at::Tensor& CausalLMImpl::lm_head_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;  // [V, H]
}

at::Tensor CausalLMImpl::forward(const at::Tensor& tokens, const at::Tensor& positions,
                                 const at::Tensor& attention_mask, KvCache* cache, const ForwardOptions& opts) {
  auto h = hidden(tokens, positions, attention_mask, cache, opts);  // [B, T, H]
  if (lm_head) return lm_head(h);                                    // [B, T, V]
  const auto& E = model->embed_tokens->weight;
  if (packed_embed.defined() && !at::GradMode::is_enabled() && h.scalar_type() == at::kFloat && h.device().is_cpu() &&
      E._version() == packed_embed_version) {
    return packed_linear(h, packed_embed, {});
  }
  return at::linear(h, E);  // [B, T, V]
}

void CausalLMImpl::pack_weights() {
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = dynamic_cast<LinearImpl*>(m.get())) {
      lin->packed = pack_linear_weight(lin->weight);
      lin->packed_version = lin->weight._version();
    }
  }
  if (!lm_head) {
    packed_embed = pack_linear_weight(model->embed_tokens->weight);
    packed_embed_version = model->embed_tokens->weight._version();
  }
}

void CausalLMImpl::unpack_weights() {
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = dynamic_cast<LinearImpl*>(m.get())) lin->packed = at::Tensor();
  }
  packed_embed = at::Tensor();
}

}  // namespace rlvr::model
