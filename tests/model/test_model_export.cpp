// Hidden test (tag [.hf_export]) run by tests/reference/check_model_saved.py: writes checkpoints saved by our
// save_pretrained plus the logits we compute on them, for transformers to load and compare. Not part of the
// default run; the ctest `model_hf_loads_saved` (label python) drives it.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdlib>

#include "model/causal_lm.h"
#include "model/safetensors.h"
#include "model_fixtures.h"

using namespace rlvr::model;

namespace {

ModelArgs export_args(const std::string& type, bool tied) {
  ModelArgs a;
  a.model_type = type;
  a.vocab_size = 151;
  a.hidden_size = 48;
  a.intermediate_size = 80;
  a.num_hidden_layers = 2;
  a.num_attention_heads = 6;
  a.num_key_value_heads = 2;
  a.attention_bias = type != "llama";
  a.qk_norm = type == "qwen3";
  a.head_dim = type == "qwen3" ? 16 : 0;
  a.tie_word_embeddings = tied;
  a.rms_norm_eps = 1e-5;
  a.rope_theta = type == "llama" ? 500000.0 : 10000.0;
  if (type == "llama") a.rope_scaling_factor = 8.0, a.rope_original_max_position = 16;
  a.bos_token_id = 1;
  a.eos_token_ids = {2, 3};
  return a;
}

}  // namespace

TEST_CASE("export checkpoints for transformers to load", "[.hf_export]") {
  const char* out = std::getenv("RLVR_MODEL_EXPORT_DIR");
  REQUIRE(out != nullptr);
  const std::filesystem::path root(out);
  struct Case {
    const char* name;
    const char* type;
    bool tied;
    int64_t shard_bytes;
  };
  for (const Case& c : {Case{"qwen2_tied", "qwen2", true, 5LL << 30}, Case{"llama3_sharded", "llama", false, 30000},
                        Case{"qwen3_bias", "qwen3", false, 5LL << 30}}) {
    auto lm = CausalLM::from_args(export_args(c.type, c.tied), 17, at::kCPU);
    {
      // Wider than HF's 0.02 init so that logits differ clearly between right and wrong math.
      at::NoGradGuard ng;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
      for (auto& [name, p] : lm->named_parameters()) {
        if (name.find("norm") != std::string::npos) p.normal_(1.0, 0.2, gen);
        else if (p.dim() == 1) p.normal_(0.0, 0.2, gen);
        else p.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(p.size(1))), gen);
      }
    }
    const auto dir = root / c.name;
    lm->save_pretrained(dir / "ckpt", {}, c.shard_bytes);
    auto ids = at::randint(4, 151, {2, 10}, at::kLong);  // [2, 10]
    auto mask = at::ones({2, 10}, at::kLong);
    mask[1].narrow(0, 0, 3).zero_();                      // row 1 left padded
    auto pos = (mask.cumsum(-1) - 1).masked_fill(mask.eq(0), 1);
    at::NoGradGuard ng;
    auto logits = lm->forward(ids, pos, mask).contiguous();  // [2, 10, V]
    write_safetensors(dir / "logits.safetensors",
                      {{"input_ids", ids}, {"attention_mask", mask}, {"position_ids", pos}, {"logits", logits}});
  }
}
