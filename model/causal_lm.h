// Qwen2 / Llama-family decoder-only causal LM (and Qwen3 q/k-norm), built from an HF config.json,
// loaded from / saved to HF safetensors directories. One forward for training (full padded sequences,
// cache == nullptr) and incremental generation (cache != nullptr); forward_hidden stops before the lm_head. Legend: B = batch rows,
// T = tokens per row, V = vocab, H = hidden size.
#pragma once
#include <torch/nn/module.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/kv_cache.h"

namespace rlvr::model {

// The subset of config.json that changes the math. Unsupported fields that would change it are errors.
struct ModelArgs {
  std::string model_type = "qwen2";      // qwen2 | llama | qwen3
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;                  // 0 in config.json = hidden_size / num_attention_heads
  int64_t max_position_embeddings = 32768;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = true;            // q/k/v bias (Qwen2: true; Llama: config attention_bias)
  bool qk_norm = false;                  // Qwen3
  // Llama 3 rope_scaling (rope_type "llama3"); factor 0 = none.
  double rope_scaling_factor = 0.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  int64_t rope_original_max_position = 8192;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;    // config.json / generation_config.json eos_token_id (int or list)
  std::string torch_dtype = "float32";   // as written in config.json

  static ModelArgs from_json_file(const std::filesystem::path& config_json);
  std::string to_json() const;           // an HF config.json that transformers loads
  // The HF names and shapes of the tensors that pin every size of config.json (embedding, first and last
  // layer's projections); from_pretrained compares them with the safetensors headers before allocating.
  std::vector<std::pair<std::string, std::vector<int64_t>>> size_defining_shapes() const;
};

class SafetensorsDir;
// Throws Error naming config.json's field, its value and the stored shape when the checkpoint's tensors do not
// have the sizes config.json declares (or it stores more or fewer layers): checked before any allocation, so a
// wrong or hostile config.json (hidden_size 1e9) is an error, not a 1 TB allocation.
void check_sizes_against_checkpoint(const ModelArgs& a, const SafetensorsDir& ckpt, const std::filesystem::path& dir);

struct ForwardOptions {
  bool gradient_checkpointing = false;   // recompute each layer in backward (training only)
  // Tokens per chunk of the MLP wherever its activations are not kept for a backward: forwards without grad mode
  // (the checkpointed layers' included) and the checkpointed backward (0: as many as keep one
  // [tokens, intermediate] activation within 2^21 elements on CPU, 2^26 on CUDA). Only rounding (row blocks of
  // the GEMMs, the summation order of the MLP weights' gradients) depends on it.
  int64_t mlp_chunk_rows = 0;
  // [B] int64: compute logits only at these positions of each row; forward then returns [B, 1, V]. Prefill
  // needs the last prompt position only, and the vocabulary projection is the largest GEMM of a small model.
  at::Tensor logit_positions;
  // [B, 1, T, T] bool, true = the query (dim 2) may attend the key (dim 3): replaces the mask built from
  // attention_mask, for rows that pack several sequences (a shared prompt and its completions). Every query must
  // see at least one key. Training forwards only (no cache).
  at::Tensor block_mask;
  // When set, receives the [V, H] weight the lm_head must use with the returned hidden states: lm_head.weight, or
  // for tied embeddings an alias of embed_tokens.weight that joins the lookup's gradient to the lm_head's in one
  // node (no second [V, H] gradient in the backward). Either is the same values as lm_head_weight().
  at::Tensor* head_weight = nullptr;
};

class CausalLMImpl;  // torch::nn::Module holding the weights

class CausalLM {
 public:
  // Loads config.json + model.safetensors (or shards with the index) from an HF directory.
  static std::shared_ptr<CausalLM> from_pretrained(const std::filesystem::path& dir, const at::Device& device,
                                                   at::ScalarType dtype = at::kFloat);
  // Random init (normal(0, 0.02), as HF's initializer_range default), seeded.
  static std::shared_ptr<CausalLM> from_args(const ModelArgs& args, uint64_t seed, const at::Device& device);

  // tokens, positions: [B, T] int64. attention_mask: [B, T] (1 = real token, 0 = padding) or undefined.
  // Returns logits [B, T, V] (fp32 on CPU; the activation dtype on CUDA with bf16).
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& attention_mask,
                     KvCache* cache = nullptr, const ForwardOptions& opts = {});

  // The same forward without the lm_head: final hidden states [B, T, H] (after the last norm), in the
  // activation dtype. Training scores only response positions through lm_head_logprobs (lm_head_logprobs.h)
  // with these, so no [B, T, V] logits exist. Gradient checkpointing (opts) applies as in forward.
  at::Tensor forward_hidden(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& attention_mask,
                            const ForwardOptions& opts = {});
  // [V, H]: lm_head.weight, or model.embed_tokens.weight when tie_word_embeddings (gradients reach it either way).
  const at::Tensor& lm_head_weight() const;

  // Writes config.json, generation_config.json, model.safetensors (shards + index above max_shard_bytes),
  // via a temporary directory and a rename. Tokenizer files are copied from tokenizer_dir if given.
  void save_pretrained(const std::filesystem::path& dir, const std::filesystem::path& tokenizer_dir = {},
                       int64_t max_shard_bytes = 5LL << 30) const;

  // Inference packing (rollout): keeps a oneDNN-blocked copy of every projection weight, which no-grad CPU fp32
  // forwards then use (the GEMMs no longer repack the weights on every call: ~1.4x decode on the bench model).
  // A weight updated in place since packing is detected by its version counter and read unpacked. Costs one
  // extra copy of the weights until unpack_weights(). A no-op on other devices and dtypes.
  void pack_weights();
  void unpack_weights();

  const ModelArgs& args() const;
  std::vector<at::Tensor> parameters() const;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;  // HF tensor names
  torch::nn::Module& module();
  at::Device device() const;

 private:
  std::shared_ptr<CausalLMImpl> impl_;
  ModelArgs args_;
};

// pack_weights() for the scope's lifetime.
class PackedWeightsScope {
 public:
  explicit PackedWeightsScope(CausalLM& m) : m_(m) { m_.pack_weights(); }
  ~PackedWeightsScope() { m_.unpack_weights(); }
  PackedWeightsScope(const PackedWeightsScope&) = delete;
  PackedWeightsScope& operator=(const PackedWeightsScope&) = delete;

 private:
  CausalLM& m_;
};

// Log-prob of each target token under logits that already exist, in fp32: logits [B, T, V], targets [B, T] ->
// [B, T]. The plain log_softmax + gather (it keeps an fp32 [B, T, V] for the backward): for checks and small
// inputs; training and `rlvr logprobs` use lm_head_logprobs on hidden states instead.
at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace rlvr::model
