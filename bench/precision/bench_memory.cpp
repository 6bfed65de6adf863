// bench_memory: one GRPO-like optimizer step (forward, token log-probs, backward, AdamW through TrainOptimizer)
// on a random model of the given shape, and the peak resident memory it took, per parameter. The baseline is
// the resident memory before the model exists (the process with LibTorch loaded), so the figure is what the
// weights, masters, moments, gradients and the step's transients cost. Prints one JSON line.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/causal_lm.h"
#include "trainer/config.h"
#include "trainer/optimizer.h"

namespace {

double rss_bytes() {  // current resident set
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double peak_rss_bytes() {  // high-water mark since the process started (ru_maxrss is in KiB on Linux)
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"peak memory per parameter of one optimizer step"};
  std::string dtype = "bf16";
  int64_t layers = 24, hidden = 896, heads = 14, kv_heads = 2, inter = 4864, vocab = 151936, seq = 64;
  int threads = 2;
  bool tied = true;
  app.add_option("--dtype", dtype)->check(CLI::IsMember({"bf16", "fp32"}));
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--heads", heads);
  app.add_option("--kv-heads", kv_heads);
  app.add_option("--intermediate", inter);
  app.add_option("--vocab", vocab);
  app.add_option("--seq", seq, "tokens in the one training sequence");
  app.add_option("--threads", threads);
  app.add_option("--tied", tied, "tie_word_embeddings (Qwen2.5-0.5B/1.5B: true)");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);

  const double base = rss_bytes();
  rlvr::model::ModelArgs a;
  a.model_type = "qwen2";
  a.vocab_size = vocab;
  a.hidden_size = hidden;
  a.intermediate_size = inter;
  a.num_hidden_layers = layers;
  a.num_attention_heads = heads;
  a.num_key_value_heads = kv_heads;
  a.tie_word_embeddings = tied;
  a.attention_bias = true;
  a.max_position_embeddings = 32768;
  auto t0 = std::chrono::steady_clock::now();
  auto lm = rlvr::model::CausalLM::from_args(a, 1, at::kCPU);  // fp32 init (4 B/param), then the working dtype
  if (dtype == "bf16") lm->module().to(at::kBFloat16);
  lm->module().train();
  int64_t n = 0;
  for (auto& p : lm->parameters()) n += p.numel();
  const double after_model = rss_bytes();

  rlvr::OptimConfig o;
  o.lr = 1e-6;
  auto named = lm->named_parameters();
  rlvr::trainer::TrainOptimizer opt(o, rlvr::trainer::NamedParams(named.begin(), named.end()), 1);
  const double after_opt = rss_bytes();
  auto ids = (at::arange(seq, at::kLong).view({1, seq}) * 7919 + 13).remainder(vocab);  // [1, T]
  auto pos = at::arange(seq, at::kLong).view({1, seq});
  auto logits = lm->forward(ids, pos, at::ones({1, seq}, at::kLong));                   // [1, T, V]
  auto lp = rlvr::model::token_logprobs(logits.narrow(1, 0, seq - 1).to(at::kFloat), ids.narrow(1, 1, seq - 1));
  opt.zero_grad();
  lp.mean().backward();
  logits = at::Tensor();
  lp = at::Tensor();
  const double after_backward = rss_bytes();
  auto r = opt.step();
  const double after_step = rss_bytes();
  const double peak = peak_rss_bytes();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const double per = 1.0 / static_cast<double>(n);
  nlohmann::json j;
  j["dtype"] = dtype;
  j["params"] = n;
  j["seq"] = seq;
  j["baseline_rss_gb"] = base / 1e9;
  j["peak_rss_gb"] = peak / 1e9;
  j["bytes_per_param"] = {{"model", (after_model - base) * per},
                          {"model_and_optimizer", (after_opt - base) * per},
                          {"after_backward", (after_backward - base) * per},
                          {"after_step", (after_step - base) * per},
                          {"peak", (peak - base) * per}};
  j["grad_norm"] = r.grad_norm;
  j["skipped"] = r.skipped;
  j["seconds"] = secs;
  std::cout << j.dump() << std::endl;
  return r.skipped ? 1 : 0;
}
