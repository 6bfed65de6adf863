// The decoder modules (RMSNorm, attention with RoPE and GQA, SwiGLU MLP, decoder layer, CausalLMImpl),
// registered under HF's names so named_parameters() yields "model.layers.0.self_attn.q_proj.weight".
// Parameters are created uninitialised (from_pretrained fills them; from_args initialises them).
// Legend: B = batch rows, T = new tokens per row, S = keys attended over, H = hidden, Hq/Hkv = heads, D = head dim.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include "model/causal_lm.h"

namespace rlvr::model {

// Packs `weight` [out, in] into oneDNN's blocked layout for no-grad CPU fp32 GEMMs; an undefined tensor where
// that is not possible (other device or dtype, a torch without oneDNN).
at::Tensor pack_linear_weight(const at::Tensor& weight);
// x [.., in] @ weight^T (+ bias) through a weight packed by pack_linear_weight.
at::Tensor packed_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& bias);

// RMSNorm over the last dim, weight * (x * rsqrt(mean(x^2) + eps)) computed in fp32 (for bf16 x, HF's order: cast
// back, then scale). CPU fp32 runs one pass per row forward and backward (norm_rope_kernels.h).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);
// Rotary embedding, x * cos + rotate_half(x) * sin, for x [B, T, heads, D] and tables cos/sin [B, T, D] (fp32; tables
// that broadcast, e.g. [1, T, D], take ATen's composition). CPU fp32 runs one pass forward and backward.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);
// SwiGLU, silu(gate) * up, for tensors of one shape. CPU fp32 runs one pass forward and backward
// (swiglu_kernels.h); other dtypes and devices ATen's silu and product.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out, bool bias, const at::TensorOptions& o);
  at::Tensor forward(const at::Tensor& x) const;  // [.., in] -> [.., out]
  at::Tensor weight, bias;                        // [out, in], [out] or undefined
  // Inference copy of weight (CausalLM::pack_weights): used by no-grad forwards while weight's version is
  // packed_version, so an in-place update of weight can never be read stale.
  at::Tensor packed;
  uint32_t packed_version = 0;
};
TORCH_MODULE(Linear);

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps, const at::TensorOptions& o);
  at::Tensor forward(const at::Tensor& x) const;  // normalise over the last dim, in fp32
  at::Tensor weight;                              // [dim]
  double eps;
};
TORCH_MODULE(RMSNorm);

struct Rope {  // cos/sin tables for given positions; inv_freq kept in fp32 on the positions' device
  explicit Rope(const ModelArgs& a);
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& positions);  // [B, T] -> cos, sin [B, T, D] fp32
  at::Tensor inv_freq;                                                         // [D / 2] fp32
};

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(const ModelArgs& a, const at::TensorOptions& o);
  // x [B, T, H]; cos/sin [B, T, D]; mask [B|1, 1, T, T] bool (undefined = causal) unless a cache gives one.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     KvCache* cache, int64_t layer);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only
  int64_t n_heads, n_kv_heads, head_dim;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(const ModelArgs& a, const at::TensorOptions& o);
  // down(silu(gate(x)) * up(x)). Without grad mode, over chunks of chunk_rows tokens (0: ForwardOptions'
  // mlp_chunk_rows default), so that no whole activation exists at once.
  at::Tensor forward(const at::Tensor& x, int64_t chunk_rows = 0) const;
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : torch::nn::Module {
  DecoderLayerImpl(const ModelArgs& a, const at::TensorOptions& o);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask,
                     KvCache* cache, int64_t layer, int64_t mlp_rows = 0);  // mlp_rows: MlpImpl::forward's chunk_rows
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t n, int64_t dim, const at::TensorOptions& o);
  at::Tensor weight;  // [V, H]
};
TORCH_MODULE(Embedding);

struct BackboneImpl : torch::nn::Module {  // HF's "model." prefix
  BackboneImpl(const ModelArgs& a, const at::TensorOptions& o);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

class CausalLMImpl : public torch::nn::Module {
 public:
  CausalLMImpl(const ModelArgs& a, const at::TensorOptions& o);
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& attention_mask,
                     KvCache* cache, const ForwardOptions& opts);
  // forward without the lm_head: the final-norm hidden states [B, T, H] (or [B, 1, H] with logit_positions).
  at::Tensor hidden(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& attention_mask,
                    KvCache* cache, const ForwardOptions& opts);
  const at::Tensor& lm_head_weight() const;  // [V, H]: lm_head.weight, or embed_tokens.weight when tied
  void pack_weights();    // see CausalLM::pack_weights
  void unpack_weights();
  Backbone model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings
  at::Tensor packed_embed;  // tied: embed_tokens.weight packed as the lm_head (see LinearImpl::packed)
  uint32_t packed_embed_version = 0;
  std::vector<DecoderLayer> layer_list;
  Rope rope;
};

// Builds the training-path mask: causal & key is real, plus the diagonal so that no row is fully masked
// (padding queries then produce finite garbage that callers ignore). attention_mask [B, T] -> [B, 1, T, T] bool.
at::Tensor training_attention_mask(const at::Tensor& attention_mask);

}  // namespace rlvr::model
