// Fixtures of the trainer's log-prob and loss tests: a two-layer model of each supported architecture (hidden 32,
// 4 query and 2 KV heads, vocabulary 151; Qwen2 tied, Llama 3 with its rope scaling, Qwen3 with q/k norms) and
// batches of random completions with their packing.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "trainer/batch.h"

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

// n token ids in [0, vocab) from torch's generator.
inline std::vector<int64_t> random_ids(int64_t vocab, int64_t n) {
  auto t = torch::randint(0, vocab, {n}, torch::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
}

// Completions (prompt and response token lists) and their packing.
struct Batch {
  std::vector<std::vector<int64_t>> prompts, responses;
  trainer::PackedBatch pb;
  // One row per completion, or (shared) one row per distinct prompt; pad id 0.
  void pack(bool shared = false) {
    std::vector<const std::vector<int64_t>*> pr, rs;
    for (size_t i = 0; i < prompts.size(); ++i) pr.push_back(&prompts[i]), rs.push_back(&responses[i]);
    pb = shared ? trainer::pack_shared_prompts(pr, rs, 0, torch::kCPU) : trainer::pack_batch(pr, rs, 0, torch::kCPU);
  }
};

}  // namespace rlvr::test
