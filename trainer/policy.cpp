#include "trainer/policy.h"

#include <torch/cuda.h>

#include "common/error.h"
#include "common/log.h"
#include "data/templates.h"
#include "model/chat_template.h"

namespace rlvr::trainer {

at::Device resolve_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  bool cuda = torch::cuda::is_available();
  if (name == "cuda") {
    RLVR_CONFIG_CHECK(cuda, "run.device is 'cuda' but CUDA is not usable on this machine");
    return at::Device(at::kCUDA, 0);
  }
  return cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
}

model::ModelArgs builtin_model_args(const std::string& name) {
  model::ModelArgs a;
  a.model_type = "qwen2";
  a.vocab_size = 259;  // 256 bytes + <|endoftext|> <|im_start|> <|im_end|>
  a.tie_word_embeddings = true;
  a.attention_bias = true;
  a.rope_theta = 10000.0;
  a.rms_norm_eps = 1e-6;
  a.max_position_embeddings = 1024;
  a.bos_token_id = 256;
  a.eos_token_ids = {258};
  if (name == "tiny") {  // ~1.6M parameters: trains on 2 CPU cores in minutes
    a.hidden_size = 128;
    a.intermediate_size = 512;
    a.num_hidden_layers = 4;
    a.num_attention_heads = 4;
    a.num_key_value_heads = 2;
  } else if (name == "small") {  // ~10M parameters
    a.hidden_size = 256;
    a.intermediate_size = 1024;
    a.num_hidden_layers = 8;
    a.num_attention_heads = 8;
    a.num_key_value_heads = 4;
  } else {
    throw ConfigError(fmt::format("unknown builtin model 'builtin:{}'; known: [builtin:tiny, builtin:small]", name));
  }
  return a;
}

Policy load_policy(const ModelConfig& cfg, const std::filesystem::path& scratch_dir, uint64_t seed,
                   at::Device device) {
  at::ScalarType dtype = at::kFloat;
  if (cfg.dtype == "bf16" || (cfg.dtype == "auto" && device.is_cuda())) dtype = at::kBFloat16;
  const std::string prefix = "builtin:";
  std::shared_ptr<model::CausalLM> lm;
  std::filesystem::path tok_dir;
  if (cfg.path.rfind(prefix, 0) == 0) {
    auto args = builtin_model_args(cfg.path.substr(prefix.size()));
    tok_dir = scratch_dir / "builtin_tokenizer";
    model::Tokenizer::write_byte_level(tok_dir);
    lm = model::CausalLM::from_args(args, seed, device);
    if (dtype != at::kFloat) lm->module().to(dtype);
  } else {
    RLVR_CONFIG_CHECK(std::filesystem::is_directory(cfg.path),
                      "model.path '{}' is not a directory (an HF checkpoint directory or builtin:tiny)", cfg.path);
    lm = model::CausalLM::from_pretrained(cfg.path, device, dtype);
    tok_dir = cfg.tokenizer.empty() ? std::filesystem::path(cfg.path) : std::filesystem::path(cfg.tokenizer);
  }
  Policy p{lm, model::Tokenizer::from_file(tok_dir), tok_dir, device, {}, 0, cfg.chat_template};
  p.eos_ids = p.tokenizer.eos_ids();
  for (auto e : lm->args().eos_token_ids)
    if (std::find(p.eos_ids.begin(), p.eos_ids.end(), e) == p.eos_ids.end()) p.eos_ids.push_back(e);
  p.pad_id = p.tokenizer.pad_id().value_or(p.eos_ids.empty() ? 0 : p.eos_ids.front());
  if (cfg.chat_template != "none") model::apply_chat_template(cfg.chat_template, {{"user", "x"}}, true);  // validates
  return p;
}

std::string render_prompt(const DataConfig& data, const std::string& chat_template, const std::string& problem) {
  data::ChatFn chat;
  if (!chat_template.empty() && chat_template != "none")
    chat = [&](const std::string& msg) { return model::apply_chat_template(chat_template, {{"user", msg}}, true); };
  return data::render_prompt(data.templ, data.template_string, problem, chat);
}

}  // namespace rlvr::trainer
