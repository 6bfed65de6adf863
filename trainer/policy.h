// The policy as the loops use it: the causal LM, its tokenizer, device and EOS ids, built from the
// model section (an HF directory, or builtin:tiny: a small Qwen2-architecture model of ours with a
// byte-level tokenizer, random-initialised, so everything runs on CPU with nothing downloaded).
// Also the prompt rendering (data template + chat template) shared by train, sft, eval and distill.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "model/tokenizer.h"
#include "trainer/config.h"

namespace rlvr::trainer {

struct Policy {
  std::shared_ptr<model::CausalLM> model;
  model::Tokenizer tokenizer;
  std::filesystem::path tokenizer_dir;   // copied into every checkpoint
  at::Device device = at::kCPU;
  std::vector<int64_t> eos_ids;          // tokenizer + generation config EOS ids
  int64_t pad_id = 0;                    // used only as a filler in padded batches (always masked)
  std::string chat_template;             // model.chat_template
};

// The device from run.device: auto = cuda when usable, else cpu.
at::Device resolve_device(const std::string& name);

// builtin:tiny's architecture (Qwen2, tied embeddings, byte-level vocab of 259).
model::ModelArgs builtin_model_args(const std::string& name);

// Loads model.path (or builds builtin:<name> with seed `seed`, writing its tokenizer to
// `scratch_dir`/builtin_tokenizer). Throws ConfigError for an unknown builtin or a missing directory.
Policy load_policy(const ModelConfig& cfg, const std::filesystem::path& scratch_dir, uint64_t seed,
                   at::Device device);

// The text the policy sees for a problem: the data template (r1_zero | qwen_math | chat | raw) with the
// model's chat template as the chat function.
std::string render_prompt(const DataConfig& data, const std::string& chat_template, const std::string& problem);

}  // namespace rlvr::trainer
