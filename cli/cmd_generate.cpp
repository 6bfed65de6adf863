// `rlvr generate --model DIR --input F.jsonl [--samples G] [--max-new-tokens N] [--temperature T] [--top-p P]
// [--top-k K] [--min-p M] [--seed S] [--ignore-eos] [--stop STR]... [--chat-template NAME] [--output F]`:
// input lines {"prompt": "..."} (as they are, or wrapped as one user message by --chat-template), output lines
// {"prompt_index", "sample", "text", "ids", "logprobs", "finish"} in prompt order. EOS ids come from the tokenizer
// files (tokenizer_config.json, generation_config.json) and the model's config.
#include <ATen/Parallel.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "model/causal_lm.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "rollout/engine.h"

namespace rlvr::cli {

namespace {

struct GenerateOpts {
  std::string model;            // HF directory: config.json, safetensors, tokenizer files
  std::string input;            // JSONL, one {"prompt": ...} per line
  std::string output;           // "" or "-": stdout
  int samples = 1;              // G completions per prompt
  int max_new_tokens = 256;     // per completion, EOS included
  double temperature = 1.0;     // 0 = greedy
  double top_p = 1.0;           // 1.0 = off
  int top_k = 0;                // 0 = off
  double min_p = 0.0;           // 0 = off
  uint64_t seed = 0;
  bool ignore_eos = false;      // generate exactly max_new_tokens (unless a stop string)
  std::vector<std::string> stop;
  std::string chat_template;    // "" = prompts as they are
  int max_batch_seqs = 64;      // sequences decoded at once
  int threads = 0;              // 0 = torch default
  std::string device = "cpu";   // cpu | cuda
  std::string dtype = "float32";  // float32 | bfloat16
};

std::vector<std::string> read_prompts(const std::string& path) {
  std::vector<std::string> prompts;
  for_each_line(path, [&](std::string_view line, size_t lineno) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}:{}: not valid JSON: {}", path, lineno, e.what()));
    }
    RLVR_CHECK(j.is_object() && j.contains("prompt") && j["prompt"].is_string(),
               "{}:{}: expected an object with a string field \"prompt\"", path, lineno);
    prompts.push_back(j["prompt"].get<std::string>());
  });
  return prompts;
}

int run_generate(const GenerateOpts& o) {
  RLVR_CONFIG_CHECK(o.device == "cpu" || o.device == "cuda", "--device must be cpu or cuda, got '{}'", o.device);
  RLVR_CONFIG_CHECK(o.dtype == "float32" || o.dtype == "bfloat16", "--dtype must be float32 or bfloat16, got '{}'",
                    o.dtype);
  RLVR_CONFIG_CHECK(o.samples >= 1, "--samples must be >= 1, got {}", o.samples);
  if (o.threads > 0) at::set_num_threads(o.threads);
  const auto tok = model::Tokenizer::from_file(o.model);
  const auto texts = read_prompts(o.input);
  std::vector<std::vector<int64_t>> prompts;
  prompts.reserve(texts.size());
  for (const auto& t : texts) {
    if (o.chat_template.empty()) {
      prompts.push_back(tok.encode(t, /*add_special_tokens=*/true));  // the file's post-processor (BOS) applies
    } else {
      // The template writes its own BOS / role markers.
      prompts.push_back(tok.encode(model::apply_chat_template(o.chat_template, {{"user", t}}, true), false));
    }
  }
  auto model = model::CausalLM::from_pretrained(o.model, at::Device(o.device),
                                                o.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat);
  rollout::SamplingParams sp;
  sp.max_new_tokens = o.max_new_tokens;
  sp.temperature = o.temperature;
  sp.top_p = o.top_p;
  sp.top_k = o.top_k;
  sp.min_p = o.min_p;
  sp.stop = o.stop;
  sp.ignore_eos = o.ignore_eos;
  sp.eos_ids = tok.eos_ids();
  for (int64_t id : model->args().eos_token_ids) {
    if (std::find(sp.eos_ids.begin(), sp.eos_ids.end(), id) == sp.eos_ids.end()) sp.eos_ids.push_back(id);
  }
  try {
    rollout::validate(sp);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  if (sp.eos_ids.empty() && !o.ignore_eos) log::warn("generate: no EOS id in the tokenizer or model config");
  rollout::RolloutOptions ro;
  ro.max_batch_seqs = o.max_batch_seqs;
  ro.seed = o.seed;
  ro.detokenize = [&tok](const std::vector<int64_t>& ids) { return tok.decode(ids, /*skip_special=*/true); };
  rollout::RolloutEngine engine(model, ro);
  const auto completions = engine.generate(prompts, sp, o.samples);

  std::string buf;
  for (const auto& c : completions) {
    nlohmann::ordered_json j;  // keys in the documented order
    j["prompt_index"] = c.prompt_index;
    j["sample"] = c.sample_index;
    j["text"] = c.text;
    j["ids"] = c.ids;
    j["logprobs"] = c.logprobs;
    j["finish"] = rollout::to_string(c.finish);
    buf += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    buf += '\n';
  }
  if (o.output.empty() || o.output == "-") {
    std::cout << buf;
    std::cout.flush();
  } else {
    write_file_atomic(o.output, buf);
  }
  const auto& s = engine.last_stats();
  log::info("generate: {} prompts x {} samples, {} prompt tokens, {} new tokens in {:.2f} s ({:.1f} new tokens/s; "
            "prefill {:.2f} s, decode {:.2f} s over {} forwards, up to {} sequences at once)",
            prompts.size(), o.samples, s.prompt_tokens, s.generated_tokens, s.total_s,
            s.total_s > 0 ? s.generated_tokens / s.total_s : 0.0, s.prefill_s, s.decode_s, s.decode_forwards,
            s.max_active);
  return 0;
}

}  // namespace

void add_generate(CLI::App& app, Action& run) {
  auto o = std::make_shared<GenerateOpts>();
  auto* sub = app.add_subcommand("generate", "sample completions for JSONL prompts");
  sub->add_option("--model,-m", o->model, "HF model directory (config.json, safetensors, tokenizer files)")
      ->required();
  sub->add_option("--input,-i", o->input, "input JSONL, one {\"prompt\": ...} per line")->required();
  sub->add_option("--output,-o", o->output, "output JSONL (default: stdout)");
  sub->add_option("--samples,-n", o->samples, "completions per prompt (G)");
  sub->add_option("--max-new-tokens", o->max_new_tokens, "tokens per completion at most (EOS included)");
  sub->add_option("--temperature", o->temperature, "sampling temperature; 0 = greedy");
  sub->add_option("--top-p", o->top_p, "nucleus sampling; 1.0 = off");
  sub->add_option("--top-k", o->top_k, "top-k sampling; 0 = off");
  sub->add_option("--min-p", o->min_p, "min-p sampling; 0 = off");
  sub->add_option("--seed", o->seed, "sampling seed (same seed, same output)");
  sub->add_flag("--ignore-eos", o->ignore_eos, "do not stop at EOS: exactly --max-new-tokens tokens");
  sub->add_option("--stop", o->stop, "stop string (repeatable); the completion ends with the token completing it");
  sub->add_option("--chat-template", o->chat_template,
                  "wrap each prompt as a user message: chatml | qwen2.5 | qwen3 | qwen3-nothink | llama3 | none | "
                  "a raw template with {prompt}");
  sub->add_option("--max-batch-seqs", o->max_batch_seqs, "sequences decoded at once (KV-cache slots)");
  sub->add_option("--threads", o->threads, "CPU threads for the forward (0 = torch default)");
  sub->add_option("--device", o->device, "cpu | cuda");
  sub->add_option("--dtype", o->dtype, "float32 | bfloat16");
  sub->callback([&run, o] { run = [o] { return run_generate(*o); }; });
}

}  // namespace rlvr::cli
