// CausalLM: construction (from an HF directory or from ModelArgs with a seeded init), saving back to an HF
// directory, and token_logprobs. The math lives in decoder.cpp, the file format in safetensors.cpp.
// Legend: B = batch rows, T = tokens per row, V = vocab, N = B * T.
#include "model/causal_lm.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/fs.h"
#include "model/decoder.h"
#include "model/safetensors.h"

namespace rlvr::model {
namespace fs = std::filesystem;

namespace {

void validate_args(ModelArgs& a) {
  if (a.head_dim == 0) {
    RLVR_CHECK(a.hidden_size % a.num_attention_heads == 0, "hidden_size {} is not divisible by {} heads",
               a.hidden_size, a.num_attention_heads);
    a.head_dim = a.hidden_size / a.num_attention_heads;
  }
  RLVR_CHECK(a.head_dim % 2 == 0, "head_dim must be even for RoPE, got {}", a.head_dim);
  RLVR_CHECK(a.num_attention_heads % a.num_key_value_heads == 0,
             "num_attention_heads {} is not a multiple of num_key_value_heads {}", a.num_attention_heads,
             a.num_key_value_heads);
  RLVR_CHECK(a.model_type == "qwen2" || a.model_type == "llama" || a.model_type == "qwen3",
             "unsupported model_type '{}'; supported: [qwen2, llama, qwen3]", a.model_type);
  RLVR_CHECK(a.model_type != "qwen2" || a.attention_bias, "qwen2 always has q/k/v biases (attention_bias must be true)");
  RLVR_CHECK(a.qk_norm == (a.model_type == "qwen3"), "qk_norm is {} but model_type is {}", a.qk_norm, a.model_type);
  RLVR_CHECK(a.rope_scaling_factor == 0 || (a.rope_scaling_factor >= 1 && a.rope_high_freq_factor > a.rope_low_freq_factor),
             "llama3 rope scaling needs factor >= 1 and high_freq_factor > low_freq_factor, got {} / {} / {}",
             a.rope_scaling_factor, a.rope_low_freq_factor, a.rope_high_freq_factor);
}

std::string dtype_string(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return "float32";
  }
}

// Eos ids of generation_config.json (int or list), which chat models set differently from config.json.
std::vector<int64_t> generation_eos(const fs::path& dir) {
  const auto p = dir / "generation_config.json";
  if (!fs::exists(p)) return {};
  auto j = nlohmann::json::parse(read_file(p), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("eos_token_id")) return {};
  const auto& e = j["eos_token_id"];
  if (e.is_number_integer()) return {e.get<int64_t>()};
  std::vector<int64_t> out;
  if (e.is_array())
    for (const auto& v : e)
      if (v.is_number_integer()) out.push_back(v.get<int64_t>());
  return out;
}

}  // namespace

std::shared_ptr<CausalLM> CausalLM::from_pretrained(const fs::path& dir, const at::Device& device,
                                                    at::ScalarType dtype) {
  RLVR_CHECK(fs::is_directory(dir), "model directory '{}' does not exist", dir.string());
  auto args = ModelArgs::from_json_file(dir / "config.json");
  for (auto id : generation_eos(dir))
    if (std::find(args.eos_token_ids.begin(), args.eos_token_ids.end(), id) == args.eos_token_ids.end())
      args.eos_token_ids.push_back(id);
  validate_args(args);
  SafetensorsDir ckpt(dir);
  check_sizes_against_checkpoint(args, ckpt, dir);  // before allocating anything of config.json's sizes
  auto lm = std::shared_ptr<CausalLM>(new CausalLM());
  lm->args_ = args;
  lm->impl_ = std::make_shared<CausalLMImpl>(args, at::TensorOptions().dtype(dtype).device(device));

  std::set<std::string> expected;
  for (auto& item : lm->impl_->named_parameters()) {
    const std::string& name = item.key();
    at::Tensor& p = item.value();
    expected.insert(name);
    RLVR_CHECK(ckpt.contains(name), "checkpoint '{}' lacks tensor '{}' (model_type {}, tie_word_embeddings {})",
               dir.string(), name, args.model_type, args.tie_word_embeddings);
    ckpt.file_of(name).load_into(name, p);
  }
  for (const auto& name : ckpt.names()) {
    if (expected.count(name)) continue;
    // Tolerated extras: a tied checkpoint that stores lm_head anyway; old checkpoints' rotary buffers.
    if (name.size() >= 19 && name.compare(name.size() - 19, 19, "rotary_emb.inv_freq") == 0) continue;
    if (name == "lm_head.weight" && args.tie_word_embeddings) continue;
    throw Error(fmt::format("checkpoint '{}' has unexpected tensor '{}' in '{}' (wrong config.json?)", dir.string(),
                            name, ckpt.file_of(name).path().string()));
  }
  lm->args_.torch_dtype = dtype_string(dtype);
  return lm;
}

std::shared_ptr<CausalLM> CausalLM::from_args(const ModelArgs& args_in, uint64_t seed, const at::Device& device) {
  ModelArgs args = args_in;
  validate_args(args);
  auto lm = std::shared_ptr<CausalLM>(new CausalLM());
  lm->args_ = args;
  // Initialised on CPU from one generator in parameter order, then moved: identical on every device.
  lm->impl_ = std::make_shared<CausalLMImpl>(args, at::TensorOptions().dtype(at::kFloat));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  {
    at::NoGradGuard ng;
    for (auto& item : lm->impl_->named_parameters()) {
      const std::string& name = item.key();
      at::Tensor& p = item.value();
      const bool is_norm = name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
      const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
      if (is_norm) p.fill_(1.0);
      else if (is_bias) p.zero_();
      else p.normal_(0.0, 0.02, gen);
    }
  }
  lm->impl_->to(device);
  lm->args_.torch_dtype = "float32";
  return lm;
}

at::Tensor CausalLM::forward(const at::Tensor& tokens, const at::Tensor& positions, const at::Tensor& attention_mask,
                             KvCache* cache, const ForwardOptions& opts) {
  return impl_->forward(tokens, positions, attention_mask, cache, opts);
}

at::Tensor CausalLM::forward_hidden(const at::Tensor& tokens, const at::Tensor& positions,
                                    const at::Tensor& attention_mask, const ForwardOptions& opts) {
  return impl_->hidden(tokens, positions, attention_mask, nullptr, opts);
}

const at::Tensor& CausalLM::lm_head_weight() const { return impl_->lm_head_weight(); }

void CausalLM::save_pretrained(const fs::path& dir_in, const fs::path& tokenizer_dir, int64_t max_shard_bytes) const {
  RLVR_CHECK(max_shard_bytes > 0, "max_shard_bytes must be > 0, got {}", max_shard_bytes);
  const fs::path dir = fs::absolute(dir_in).lexically_normal();
  const fs::path parent = dir.parent_path();
  fs::create_directories(parent);
  const fs::path tmp = parent / fmt::format(".{}.tmp.{}", dir.filename().string(), ::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    auto named = named_parameters();
    ModelArgs a = args_;
    a.torch_dtype = named.empty() ? "float32" : dtype_string(named[0].second.scalar_type());
    write_file_atomic(tmp / "config.json", a.to_json());
    nlohmann::ordered_json gen;
    if (a.bos_token_id >= 0) gen["bos_token_id"] = a.bos_token_id;
    if (a.eos_token_ids.size() == 1) gen["eos_token_id"] = a.eos_token_ids[0];
    else if (!a.eos_token_ids.empty()) gen["eos_token_id"] = a.eos_token_ids;
    write_file_atomic(tmp / "generation_config.json", gen.dump(2) + "\n");

    // Pack tensors into shards in parameter order, each below max_shard_bytes (a bigger tensor gets its own).
    std::vector<std::vector<std::pair<std::string, at::Tensor>>> shards(1);
    int64_t cur = 0, total = 0;
    for (auto& [name, t] : named) {
      const int64_t nb = t.numel() * static_cast<int64_t>(t.element_size());
      if (cur > 0 && cur + nb > max_shard_bytes) shards.emplace_back(), cur = 0;
      shards.back().emplace_back(name, t);
      cur += nb;
      total += nb;
    }
    const std::map<std::string, std::string> meta{{"format", "pt"}};
    if (shards.size() == 1) {
      write_safetensors(tmp / "model.safetensors", shards[0], meta);
    } else {
      nlohmann::ordered_json index;
      index["metadata"] = {{"total_size", total}};
      nlohmann::ordered_json map = nlohmann::ordered_json::object();
      for (size_t i = 0; i < shards.size(); ++i) {
        const auto file = fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
        write_safetensors(tmp / file, shards[i], meta);
        for (auto& [name, t] : shards[i]) map[name] = file, (void)t;
      }
      index["weight_map"] = map;
      write_file_atomic(tmp / "model.safetensors.index.json", index.dump(2) + "\n");
    }
    if (!tokenizer_dir.empty()) {
      int copied = 0;
      for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                            "special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
                            "chat_template.json", "tokenizer.model"}) {
        if (fs::exists(tokenizer_dir / f)) fs::copy_file(tokenizer_dir / f, tmp / f), ++copied;
      }
      RLVR_CHECK(copied > 0, "save_pretrained: no tokenizer files in '{}'", tokenizer_dir.string());
    }
    // Swap in: an existing directory is moved aside first (rename cannot replace a non-empty directory).
    const fs::path old = parent / fmt::format(".{}.old.{}", dir.filename().string(), ::getpid());
    const bool had = fs::exists(dir);
    if (had) fs::rename(dir, old);
    fs::rename(tmp, dir);
    if (had) fs::remove_all(old);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

void CausalLM::pack_weights() { impl_->pack_weights(); }

void CausalLM::unpack_weights() { impl_->unpack_weights(); }

const ModelArgs& CausalLM::args() const { return args_; }

std::vector<at::Tensor> CausalLM::parameters() const { return impl_->parameters(); }

std::vector<std::pair<std::string, at::Tensor>> CausalLM::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& item : impl_->named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

torch::nn::Module& CausalLM::module() { return *impl_; }

at::Device CausalLM::device() const { return impl_->model->embed_tokens->weight.device(); }

at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets) {
  RLVR_CHECK(logits.dim() == 3 && targets.dim() == 2 && logits.size(0) == targets.size(0) &&
                 logits.size(1) == targets.size(1),
             "token_logprobs: logits {} and targets {} must be [B, T, V] and [B, T]", c10::str(logits.sizes()),
             c10::str(targets.sizes()));
  const auto B = logits.size(0), T = logits.size(1), V = logits.size(2);
  auto flat = logits.reshape({B * T, V});                      // [N, V]
  auto tgt = targets.reshape({B * T, 1}).to(logits.device(), at::kLong);  // [N, 1]
  if (tgt.device().is_cpu() && tgt.numel() > 0) {
    RLVR_CHECK(tgt.min().item<int64_t>() >= 0 && tgt.max().item<int64_t>() < V,
               "token_logprobs: target ids must be in [0, {}), got [{}, {}]", V, tgt.min().item<int64_t>(),
               tgt.max().item<int64_t>());
  }
  auto lp = at::log_softmax(flat.to(at::kFloat), -1).gather(-1, tgt).squeeze(-1);  // [N] fp32
  return lp.view({B, T});                                                          // [B, T] fp32
}

}  // namespace rlvr::model
