// Logits and greedy continuations against transformers 5.17 (fixtures from tests/reference/make_model.py):
// Qwen2 tied/untied, GQA ratios 1/2/4, Llama 3 rope scaling, Llama with biases, Qwen3, sharded, BF16-stored.
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "model/causal_lm.h"
#include "model/safetensors.h"
#include "model_fixtures.h"

using namespace rlvr::model;

namespace {

struct Ref {
  at::Tensor ids, mask, pos, logits;  // [B, T] x3, [B, T, V]
  nlohmann::json greedy;
};

Ref load_ref(const std::filesystem::path& d) {
  SafetensorsFile f(d / "ref.safetensors");
  Ref r{f.load("input_ids"), f.load("attention_mask"), f.load("position_ids"), f.load("logits"), {}};
  r.greedy = nlohmann::json::parse(rlvr::read_file(d / "ref.json"))["greedy"];
  return r;
}

// Greedy decoding by repeated full forwards (the rollout engine does the KV-cache version).
std::vector<int64_t> greedy(CausalLM& lm, std::vector<int64_t> seq, int n) {
  at::NoGradGuard ng;
  std::vector<int64_t> out;
  for (int i = 0; i < n; ++i) {
    auto ids = at::tensor(seq, at::kLong).unsqueeze(0);                 // [1, T]
    auto logits = lm.forward(ids, at::Tensor(), at::Tensor());         // [1, T, V]
    int64_t next = logits[0][-1].argmax().item<int64_t>();
    out.push_back(next);
    seq.push_back(next);
  }
  return out;
}

}  // namespace

TEST_CASE("logits and greedy tokens match transformers", "[model]") {
  for (const char* name : {"qwen2_tied", "qwen2_untied", "qwen2_gqa4", "llama3", "llama_bias", "qwen3",
                           "qwen2_untied_sharded", "qwen2_tied_bf16"}) {
    SECTION(name) {
      auto d = model_fixture_dir(name);
      auto ref = load_ref(d);
      auto lm = CausalLM::from_pretrained(d / "hf", at::kCPU, at::kFloat);
      at::NoGradGuard ng;
      auto logits = lm->forward(ref.ids, ref.pos, ref.mask);  // [B, T, V]
      REQUIRE(logits.sizes() == ref.logits.sizes());
      auto real = ref.mask.to(at::kBool).unsqueeze(-1);       // [B, T, 1]
      auto diff = (logits - ref.logits).abs().masked_fill(real.logical_not(), 0).max().item<double>();
      INFO(name << " max |logits - transformers| on real tokens = " << diff);
      CHECK(diff < 1e-4);
      CHECK(logits.isfinite().all().item<bool>());  // padded positions too (no fully masked row)
      for (const auto& g : ref.greedy) {
        auto prompt = g["prompt"].get<std::vector<int64_t>>();
        auto expect = g["output"].get<std::vector<int64_t>>();
        CHECK(greedy(*lm, prompt, static_cast<int>(expect.size())) == expect);
      }
    }
  }
}

TEST_CASE("config.json fields are read for each architecture", "[model]") {
  auto q3 = ModelArgs::from_json_file(model_fixture_dir("qwen3") / "hf" / "config.json");
  CHECK(q3.model_type == "qwen3");
  CHECK(q3.head_dim == 16);
  CHECK(q3.qk_norm);
  CHECK_FALSE(q3.attention_bias);
  CHECK(q3.tie_word_embeddings);
  CHECK(q3.rope_theta == 1000000.0);
  auto l3 = ModelArgs::from_json_file(model_fixture_dir("llama3") / "hf" / "config.json");
  CHECK(l3.model_type == "llama");
  CHECK(l3.rope_scaling_factor == 8.0);
  CHECK(l3.rope_original_max_position == 32);
  CHECK(l3.rope_theta == 500000.0);
  CHECK(l3.rms_norm_eps == 1e-5);
  CHECK(l3.eos_token_ids == std::vector<int64_t>{2});
  CHECK(l3.bos_token_id == 1);
  auto q2 = ModelArgs::from_json_file(model_fixture_dir("qwen2_untied") / "hf" / "config.json");
  CHECK(q2.attention_bias);
  CHECK_FALSE(q2.tie_word_embeddings);
  CHECK(q2.num_key_value_heads == 4);
}

TEST_CASE("a padded row gives the same logits on its real tokens as unpadded", "[model]") {
  auto d = model_fixture_dir("qwen2_tied");
  auto ref = load_ref(d);
  auto lm = CausalLM::from_pretrained(d / "hf", at::kCPU, at::kFloat);
  at::NoGradGuard ng;
  auto batched = lm->forward(ref.ids, ref.pos, ref.mask);  // [3, 12, V]
  for (int64_t row : {1, 2}) {                              // 1: left padded, 2: right padded
    auto keep = ref.mask[row].to(at::kBool);                // [12]
    auto ids = ref.ids[row].masked_select(keep).unsqueeze(0);  // [1, n]
    auto alone = lm->forward(ids, at::Tensor(), at::Tensor());  // [1, n, V]
    auto padded = batched[row].index({keep});                   // [n, V]
    CHECK((alone[0] - padded).abs().max().item<double>() < 1e-5);
    // The same row with an explicit all-ones mask, and right-padded with extra garbage tokens.
    auto ones = lm->forward(ids, at::Tensor(), at::ones_like(ids));
    CHECK((ones - alone).abs().max().item<double>() < 1e-5);
    const int64_t n = ids.size(1);
    auto longer = at::cat({ids, at::full({1, 3}, 5, at::kLong)}, 1);               // [1, n + 3]
    auto m = at::cat({at::ones({1, n}, at::kLong), at::zeros({1, 3}, at::kLong)}, 1);
    auto right = lm->forward(longer, at::Tensor(), m);
    CHECK((right.narrow(1, 0, n) - alone).abs().max().item<double>() < 1e-5);
  }
}
