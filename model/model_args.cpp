// ModelArgs <-> HF config.json. Reads both config styles (transformers 4: rope_theta + rope_scaling;
// transformers 5: rope_parameters). Any field that would change the math and is not implemented here
// (sliding window, other rope types, activations, MLP bias, partial rotary) is an error naming it.
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "model/causal_lm.h"
#include "model/safetensors.h"

#include <fmt/ranges.h>
#include <algorithm>

namespace rlvr::model {
using json = nlohmann::json;

namespace {

template <typename T>
T get_or(const json& j, const char* key, T def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  return j[key].get<T>();
}

bool truthy(const json& j, const char* key) { return j.contains(key) && j[key].is_boolean() && j[key].get<bool>(); }

}  // namespace

ModelArgs ModelArgs::from_json_file(const std::filesystem::path& config_json) {
  const std::string where = config_json.string();
  json j = json::parse(read_file(config_json), nullptr, /*allow_exceptions=*/false);
  RLVR_CHECK(!j.is_discarded() && j.is_object(), "'{}' is not a JSON object", where);
  ModelArgs a;
  try {
    a.model_type = get_or<std::string>(j, "model_type", "");
    RLVR_CHECK(a.model_type == "qwen2" || a.model_type == "llama" || a.model_type == "qwen3",
               "'{}': unsupported model_type '{}'; supported: [qwen2, llama, qwen3]", where, a.model_type);
    auto req = [&](const char* key) {
      RLVR_CHECK(j.contains(key) && j[key].is_number_integer(), "'{}': missing or non-integer '{}'", where, key);
      return j[key].get<int64_t>();
    };
    a.vocab_size = req("vocab_size");
    a.hidden_size = req("hidden_size");
    a.intermediate_size = req("intermediate_size");
    a.num_hidden_layers = req("num_hidden_layers");
    a.num_attention_heads = req("num_attention_heads");
    a.num_key_value_heads = get_or<int64_t>(j, "num_key_value_heads", a.num_attention_heads);
    // Qwen3Config's default head_dim is 128; Llama/Qwen2 derive it from hidden / heads.
    a.head_dim = get_or<int64_t>(j, "head_dim", a.model_type == "qwen3" ? 128 : 0);
    a.max_position_embeddings = get_or<int64_t>(j, "max_position_embeddings", a.max_position_embeddings);
    a.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6);
    a.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
    // Qwen2Attention always has q/k/v bias; Llama/Qwen3 follow attention_bias (and then o_proj has one too).
    a.attention_bias = a.model_type == "qwen2" ? true : get_or<bool>(j, "attention_bias", false);
    a.qk_norm = a.model_type == "qwen3";
    a.bos_token_id = get_or<int64_t>(j, "bos_token_id", -1);
    if (j.contains("eos_token_id")) {
      if (j["eos_token_id"].is_number_integer()) a.eos_token_ids = {j["eos_token_id"].get<int64_t>()};
      else if (j["eos_token_id"].is_array()) a.eos_token_ids = j["eos_token_id"].get<std::vector<int64_t>>();
    }
    a.torch_dtype = get_or<std::string>(j, "dtype", get_or<std::string>(j, "torch_dtype", "float32"));

    // Fields that would change the math.
    const auto act = get_or<std::string>(j, "hidden_act", "silu");
    RLVR_CHECK(act == "silu", "'{}': hidden_act '{}' is not supported (only silu)", where, act);
    RLVR_CHECK(!truthy(j, "use_sliding_window"), "'{}': use_sliding_window=true is not supported", where);
    RLVR_CHECK(!truthy(j, "mlp_bias"), "'{}': mlp_bias=true is not supported", where);
    if (j.contains("layer_types") && j["layer_types"].is_array())
      for (const auto& t : j["layer_types"])
        RLVR_CHECK(t == "full_attention", "'{}': layer_types contains '{}'; only full_attention is supported", where,
                   t.dump());
    RLVR_CHECK(get_or<double>(j, "partial_rotary_factor", 1.0) == 1.0,
               "'{}': partial_rotary_factor != 1 is not supported", where);

    // RoPE: rope_parameters (v5) or rope_scaling (v4), rope_theta at the top level or inside.
    json rope = json::object();
    if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) rope = j["rope_parameters"];
    else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) rope = j["rope_scaling"];
    a.rope_theta = get_or<double>(rope, "rope_theta", get_or<double>(j, "rope_theta", 10000.0));
    const auto rope_type = get_or<std::string>(rope, "rope_type", get_or<std::string>(rope, "type", "default"));
    RLVR_CHECK(get_or<double>(rope, "partial_rotary_factor", 1.0) == 1.0,
               "'{}': rope partial_rotary_factor != 1 is not supported", where);
    if (rope_type == "llama3") {
      for (const char* k : {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"})
        RLVR_CHECK(rope.contains(k) && rope[k].is_number(), "'{}': llama3 rope scaling lacks '{}'", where, k);
      a.rope_scaling_factor = rope["factor"].get<double>();
      a.rope_low_freq_factor = rope["low_freq_factor"].get<double>();
      a.rope_high_freq_factor = rope["high_freq_factor"].get<double>();
      a.rope_original_max_position = rope["original_max_position_embeddings"].get<int64_t>();
    } else {
      RLVR_CHECK(rope_type == "default", "'{}': rope type '{}' is not supported; supported: [default, llama3]", where,
                 rope_type);
    }
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}': a field has the wrong type: {}", where, e.what()));
  }
  RLVR_CHECK(a.vocab_size > 0 && a.hidden_size > 0 && a.intermediate_size > 0 && a.num_hidden_layers > 0 &&
                 a.num_attention_heads > 0 && a.num_key_value_heads > 0,
             "'{}': sizes must be positive (vocab {}, hidden {}, inter {}, layers {}, heads {}, kv heads {})", where,
             a.vocab_size, a.hidden_size, a.intermediate_size, a.num_hidden_layers, a.num_attention_heads,
             a.num_key_value_heads);
  // Sanity bounds far above any released model (Llama 3 405B: hidden 16384, 126 layers, vocab 128256), so that
  // a corrupt value fails here instead of allocating until the memory limit.
  const std::pair<const char*, std::pair<int64_t, int64_t>> caps[] = {
      {"vocab_size", {a.vocab_size, int64_t{1} << 24}},       {"hidden_size", {a.hidden_size, int64_t{1} << 17}},
      {"intermediate_size", {a.intermediate_size, int64_t{1} << 20}},
      {"num_hidden_layers", {a.num_hidden_layers, 1024}},    {"num_attention_heads", {a.num_attention_heads, 4096}},
      {"num_key_value_heads", {a.num_key_value_heads, 4096}}, {"head_dim", {a.head_dim, 8192}},
      {"max_position_embeddings", {a.max_position_embeddings, int64_t{1} << 24}}};
  for (const auto& [key, vc] : caps)
    RLVR_CHECK(vc.first <= vc.second, "'{}': {} = {} is implausibly large (at most {}); is the file corrupt?", where,
               key, vc.first, vc.second);
  return a;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> ModelArgs::size_defining_shapes() const {
  const int64_t hd = head_dim > 0 ? head_dim : hidden_size / std::max<int64_t>(1, num_attention_heads);
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({"model.embed_tokens.weight", {vocab_size, hidden_size}});
  for (int64_t l : {int64_t{0}, num_hidden_layers - 1}) {
    const std::string p = fmt::format("model.layers.{}.", l);
    out.push_back({p + "self_attn.q_proj.weight", {num_attention_heads * hd, hidden_size}});
    out.push_back({p + "self_attn.k_proj.weight", {num_key_value_heads * hd, hidden_size}});
    out.push_back({p + "mlp.gate_proj.weight", {intermediate_size, hidden_size}});
  }
  return out;
}

void check_sizes_against_checkpoint(const ModelArgs& a, const SafetensorsDir& ckpt, const std::filesystem::path& dir) {
  const auto cfg = (dir / "config.json").string();
  for (const auto& [name, want] : a.size_defining_shapes()) {
    RLVR_CHECK(ckpt.contains(name),
               "'{}' declares num_hidden_layers = {}, but the checkpoint in '{}' has no tensor '{}'", cfg,
               a.num_hidden_layers, dir.string(), name);
    const auto& got = ckpt.file_of(name).entry(name).shape;
    RLVR_CHECK(got == want,
               "'{}' does not match the checkpoint: '{}' is stored as [{}] but config.json (vocab_size {}, "
               "hidden_size {}, intermediate_size {}, heads {}/{}) implies [{}]",
               cfg, name, fmt::join(got, ", "), a.vocab_size, a.hidden_size, a.intermediate_size,
               a.num_attention_heads, a.num_key_value_heads, fmt::join(want, ", "));
  }
  const auto extra = fmt::format("model.layers.{}.self_attn.q_proj.weight", a.num_hidden_layers);
  RLVR_CHECK(!ckpt.contains(extra), "'{}' declares num_hidden_layers = {}, but the checkpoint in '{}' has more layers",
             cfg, a.num_hidden_layers, dir.string());
}

std::string ModelArgs::to_json() const {
  nlohmann::ordered_json j;
  const char* arch = model_type == "qwen2" ? "Qwen2ForCausalLM" : model_type == "llama" ? "LlamaForCausalLM"
                                                                                         : "Qwen3ForCausalLM";
  j["architectures"] = {arch};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  if (head_dim > 0) j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  if (rope_scaling_factor > 0) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope_scaling_factor},
                         {"low_freq_factor", rope_low_freq_factor},
                         {"high_freq_factor", rope_high_freq_factor},
                         {"original_max_position_embeddings", rope_original_max_position}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (model_type != "qwen2") j["attention_bias"] = attention_bias;
  if (model_type != "llama") j["use_sliding_window"] = false;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  return j.dump(2) + "\n";
}

}  // namespace rlvr::model
