// `rlvr logprobs --model DIR --input F.jsonl [--output F] [--add-special-tokens] [--device D] [--dtype T]
// [--batch-size N] [--threads N]`: input lines {"text": "..."} or {"ids": [...]}, output lines
// {"ids": [...], "logprobs": [null, lp_1, ...]} in input order; logprobs[i] = log p(ids[i] | ids[<i]) in fp32.
// Rows are right-padded into batches; padding never changes a row's numbers (tested in tests/model/). Only
// real positions go through the lm_head (lm_head_logprobs): no [B, T, V] logits are held.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "model/causal_lm.h"
#include "model/lm_head_logprobs.h"
#include "model/tokenizer.h"

namespace rlvr::cli {

namespace {

struct LogprobsOpts {
  std::string model;              // HF directory: config.json, safetensors (+ tokenizer files for text lines)
  std::string input;              // JSONL: {"text": ...} or {"ids": [...]} per line
  std::string output;             // "" or "-": stdout
  bool add_special_tokens = false;  // apply the tokenizer's post-processor (e.g. BOS) to text lines
  std::string device = "cpu";     // cpu | cuda
  std::string dtype = "float32";  // float32 | bfloat16 (weights and activations)
  int batch_size = 8;             // rows per forward
  int threads = 0;                // 0 = torch default
};

std::vector<std::vector<int64_t>> read_inputs(const LogprobsOpts& o, int64_t vocab) {
  std::vector<std::vector<int64_t>> rows;
  std::optional<model::Tokenizer> tok;
  for_each_line(o.input, [&](std::string_view line, size_t lineno) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    RLVR_CHECK(!j.is_discarded() && j.is_object(), "{}:{}: not a JSON object", o.input, lineno);
    std::vector<int64_t> ids;
    if (j.contains("ids")) {
      RLVR_CHECK(j["ids"].is_array(), "{}:{}: \"ids\" must be an array of integers", o.input, lineno);
      for (const auto& v : j["ids"]) {
        RLVR_CHECK(v.is_number_integer(), "{}:{}: \"ids\" must be an array of integers, got {}", o.input, lineno,
                   v.dump());
        ids.push_back(v.get<int64_t>());
      }
    } else if (j.contains("text") && j["text"].is_string()) {
      if (!tok) tok = model::Tokenizer::from_file(o.model);
      ids = tok->encode(j["text"].get<std::string>(), o.add_special_tokens);
    } else {
      throw Error(fmt::format("{}:{}: expected {{\"text\": \"...\"}} or {{\"ids\": [...]}}", o.input, lineno));
    }
    for (auto id : ids)
      RLVR_CHECK(id >= 0 && id < vocab, "{}:{}: token id {} is outside the model's vocab [0, {})", o.input, lineno,
                 id, vocab);
    rows.push_back(std::move(ids));
  });
  return rows;
}

// Log-probs of each row's tokens 1.. given the previous ones; rows right-padded to the longest.
std::vector<std::vector<float>> score_batch(model::CausalLM& lm, const std::vector<std::vector<int64_t>>& rows) {
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  for (const auto& r : rows) T = std::max<int64_t>(T, static_cast<int64_t>(r.size()));
  std::vector<std::vector<float>> out(rows.size());
  if (T < 2) return out;
  auto ids = at::zeros({B, T}, at::kLong);   // [B, T]
  auto mask = at::zeros({B, T}, at::kLong);  // [B, T]
  for (int64_t b = 0; b < B; ++b) {
    const auto n = static_cast<int64_t>(rows[b].size());
    if (n == 0) continue;
    ids[b].narrow(0, 0, n).copy_(at::tensor(rows[b], at::kLong));
    mask[b].narrow(0, 0, n).fill_(1);
  }
  at::NoGradGuard ng;
  auto h = lm.forward_hidden(ids, at::Tensor(), mask);  // [B, T, H]
  // Score position t of row b (predicting ids[b][t+1]) only where both are real: N rows through the lm_head.
  auto pred = mask.narrow(1, 1, T - 1).gt(0).reshape({B * (T - 1)});               // [B * (T-1)] bool
  auto sel = pred.nonzero().squeeze(1);                                            // [N] into [B * (T-1)]
  auto src = sel + sel.div(T - 1, "floor");                                        // [N] into [B * T]
  auto hs = h.reshape({B * T, h.size(2)}).index_select(0, src.to(h.device()));    // [N, H]
  auto tgt = ids.reshape({B * T}).index_select(0, src + 1);                        // [N]
  auto lp = model::lm_head_logprobs(hs, lm.lm_head_weight(), tgt).logp.to(at::kCPU).contiguous();  // [N] fp32
  const float* p = lp.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {  // rows in order, each contributing n - 1 scores
    const auto n = static_cast<int64_t>(rows[b].size());
    if (n < 2) continue;
    out[b].assign(p, p + (n - 1));
    p += n - 1;
  }
  return out;
}

int run_logprobs(const LogprobsOpts& o) {
  RLVR_CONFIG_CHECK(o.batch_size >= 1, "--batch-size must be >= 1, got {}", o.batch_size);
  RLVR_CONFIG_CHECK(o.device == "cpu" || o.device == "cuda", "--device must be cpu or cuda, got '{}'", o.device);
  RLVR_CONFIG_CHECK(o.dtype == "float32" || o.dtype == "bfloat16", "--dtype must be float32 or bfloat16, got '{}'",
                    o.dtype);
  if (o.threads > 0) at::set_num_threads(o.threads);
  const at::Device dev = o.device == "cuda" ? at::Device(at::kCUDA) : at::Device(at::kCPU);
  auto lm = model::CausalLM::from_pretrained(o.model, dev, o.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat);
  lm->module().eval();
  auto rows = read_inputs(o, lm->args().vocab_size);
  std::string text;
  for (size_t s = 0; s < rows.size(); s += o.batch_size) {
    const size_t e = std::min(rows.size(), s + static_cast<size_t>(o.batch_size));
    std::vector<std::vector<int64_t>> batch(rows.begin() + s, rows.begin() + e);
    auto lps = score_batch(*lm, batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      nlohmann::json j;
      j["ids"] = batch[i];
      nlohmann::json l = nlohmann::json::array();
      if (!batch[i].empty()) l.push_back(nullptr);
      for (float v : lps[i]) l.push_back(v);
      j["logprobs"] = std::move(l);
      text += j.dump() + "\n";
    }
  }
  if (o.output.empty() || o.output == "-") {
    std::cout << text << std::flush;
  } else {
    write_file_atomic(o.output, text);
    log::info("logprobs: {} rows -> {}", rows.size(), o.output);
  }
  return 0;
}

}  // namespace

void add_logprobs(CLI::App& app, Action& run) {
  auto o = std::make_shared<LogprobsOpts>();
  auto* sub = app.add_subcommand("logprobs", "per-token log-probs of texts or token ids under a model");
  sub->add_option("--model,-m", o->model, "HF model directory (config.json, *.safetensors, tokenizer files)")
      ->required();
  sub->add_option("--input,-i", o->input, "JSONL: {\"text\": ...} or {\"ids\": [...]} per line")->required();
  sub->add_option("--output,-o", o->output, "JSONL output (default: stdout)");
  sub->add_flag("--add-special-tokens", o->add_special_tokens, "apply the tokenizer's post-processor (e.g. BOS)");
  sub->add_option("--device", o->device, "cpu | cuda")->capture_default_str();
  sub->add_option("--dtype", o->dtype, "float32 | bfloat16")->capture_default_str();
  sub->add_option("--batch-size", o->batch_size, "rows per forward")->capture_default_str();
  sub->add_option("--threads", o->threads, "CPU threads (0: torch default)")->capture_default_str();
  sub->callback([&run, o] { run = [o] { return run_logprobs(*o); }; });
}

}  // namespace rlvr::cli
