// A two-layer model of each supported architecture for the trainer's log-prob and loss tests: hidden 32, 4 query
// and 2 KV heads (grouped-query attention), vocabulary 151, Qwen2 tied, Llama 3 with its rope scaling, Qwen3 with
// q/k norms.
#pragma once
#include <string>

#include "model/causal_lm.h"

namespace rlvr::test {

inline model::ModelArgs small_args(const std::string& type) {
  model::ModelArgs a;
  a.model_type = type;
  a.vocab_size = 151;
  a.hidden_size = 32;
  a.intermediate_size = 48;
  a.num_hidden_layers = 2;
  a.num_attention_heads = 4;
  a.num_key_value_heads = 2;
  a.attention_bias = type != "qwen3";
  a.qk_norm = type == "qwen3";
  a.tie_word_embeddings = type == "qwen2";
  if (type == "llama") a.rope_scaling_factor = 8.0, a.rope_original_max_position = 8;
  return a;
}

}  // namespace rlvr::test
