// bench_rollout: new tokens per second of RolloutEngine on a checkpoint and a prompt file (token ids), exactly N new
// tokens per completion, plus this machine's copy bandwidth and GEMM rate and the fraction of the bounds they imply
// (bytes of weights + KV read per decode step; FLOPs per token). Prints one JSON line. See bench/rollout/run.sh.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/causal_lm.h"
#include "rollout/engine.h"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double copy_bandwidth_gbps() {  // read + write bytes per second of a 256 MiB tensor copy
  auto src = at::rand({64 << 20}, at::kFloat), dst = at::empty_like(src);
  dst.copy_(src);
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    auto t = Clock::now();
    dst.copy_(src);
    best = std::min(best, since(t));
  }
  return 2.0 * src.nbytes() / best / 1e9;
}

double gemm_gflops(int64_t m, int64_t k, int64_t n) {  // [m, k] x [k, n], as a decode-step linear layer
  auto a = at::randn({m, k}), w = at::randn({n, k});
  auto out = at::linear(a, w);
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    auto t = Clock::now();
    out = at::linear(a, w);
    best = std::min(best, since(t));
  }
  return 2.0 * m * k * n / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_rollout"};
  std::string model_dir, prompts_path;
  int samples = 8, new_tokens = 128, threads = 2, max_batch_seqs = 64, reps = 1;
  app.add_option("--model", model_dir)->required();
  app.add_option("--prompts", prompts_path)->required();
  app.add_option("--samples", samples);
  app.add_option("--new", new_tokens);
  app.add_option("--threads", threads);
  app.add_option("--max-batch-seqs", max_batch_seqs);
  app.add_option("--reps", reps);
  int confidence_top_k = 0;  // > 0: record DeepConf token confidence as training rollouts do (rollout.confidence_top_k)
  app.add_option("--confidence-top-k", confidence_top_k);
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  auto model = rlvr::model::CausalLM::from_pretrained(model_dir, at::Device(at::kCPU), at::kFloat);
  std::vector<std::vector<int64_t>> prompts = nlohmann::json::parse(std::ifstream(prompts_path));
  rlvr::rollout::RolloutOptions ro;
  ro.max_batch_seqs = max_batch_seqs;
  ro.seed = 1;
  rlvr::rollout::RolloutEngine engine(model, ro);
  rlvr::rollout::SamplingParams sp;
  sp.temperature = 1.0;
  sp.max_new_tokens = new_tokens;
  sp.ignore_eos = true;
  {
    auto warm = sp;
    warm.max_new_tokens = 4;
    engine.generate({prompts[0]}, warm, 2);
  }
  double best = 1e30, best_cpu = 1e30;  // wall and process CPU seconds (CPU time is robust on a shared machine)
  rlvr::rollout::RolloutStats st;
  for (int r = 0; r < reps; ++r) {
    auto t = Clock::now();
    const std::clock_t c0 = std::clock();
    rlvr::rollout::GenerateControl ctl;
    ctl.confidence_top_k = confidence_top_k;
    engine.generate(prompts, sp, samples, ctl);
    double dt = since(t);
    best_cpu = std::min(best_cpu, static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
    if (dt < best) {
      best = dt;
      st = engine.last_stats();
    }
  }
  const auto& a = model->args();
  const int64_t D = a.head_dim > 0 ? a.head_dim : a.hidden_size / a.num_attention_heads;
  int64_t weight_bytes = 0;
  for (const auto& p : model->parameters()) weight_bytes += p.nbytes();
  const int64_t embed_bytes = a.vocab_size * a.hidden_size * 4;
  if (!a.tie_word_embeddings) weight_bytes -= embed_bytes;  // the input embedding reads B rows only
  const double kv_bytes_per_pos = 2.0 * a.num_hidden_layers * a.num_key_value_heads * D * 4;
  double kv_positions = 0, attn_flops = 0;  // keys read over all decode steps
  for (const auto& p : prompts) {
    for (int t = 1; t < new_tokens; ++t) {
      kv_positions += samples * static_cast<double>(p.size() + t);
    }
  }
  attn_flops = kv_positions * 4.0 * a.num_hidden_layers * a.num_attention_heads * D;
  const double gen = static_cast<double>(prompts.size()) * samples * new_tokens;
  const double linear_params = weight_bytes / 4.0;  // every weight read per step is a GEMM operand (lm_head too)
  const double flops = 2.0 * linear_params * gen + attn_flops;
  const double bw = copy_bandwidth_gbps() * 1e9;
  const double bw_seconds = (st.decode_forwards * static_cast<double>(weight_bytes) + kv_positions * kv_bytes_per_pos) / bw;
  const int64_t B = std::min<int64_t>(max_batch_seqs, prompts.size() * samples);
  const double gflops = gemm_gflops(B, a.hidden_size, a.intermediate_size) * 1e9;
  const double flop_seconds = flops / gflops;
  nlohmann::json j;
  j["impl"] = "rlvr";
  j["new_tokens"] = static_cast<int64_t>(gen);
  j["seconds"] = best;
  j["tokens_per_s"] = gen / best;
  j["cpu_seconds"] = best_cpu;
  j["tokens_per_cpu_s"] = gen / best_cpu;
  j["threads"] = threads;
  j["prefill_s"] = st.prefill_s;
  j["decode_s"] = st.decode_s;
  j["sample_s"] = st.sample_s;
  j["decode_forwards"] = st.decode_forwards;
  j["copy_bandwidth_GBps"] = bw / 1e9;
  j["weight_MB_per_step"] = weight_bytes / 1e6;
  j["kv_MB_per_step_avg"] = kv_positions * kv_bytes_per_pos / std::max<int64_t>(1, st.decode_forwards) / 1e6;
  j["bandwidth_bound_tokens_per_s"] = gen / bw_seconds;
  j["fraction_of_bandwidth_bound"] = bw_seconds / best;
  j["gemm_GFLOPs"] = gflops / 1e9;
  j["flop_bound_tokens_per_s"] = gen / flop_seconds;
  j["fraction_of_flop_bound"] = flop_seconds / best;
  // The same against CPU time per thread: what an unshared machine would show.
  j["fraction_of_bandwidth_bound_cpu"] = bw_seconds / (best_cpu / threads);
  j["fraction_of_flop_bound_cpu"] = flop_seconds / (best_cpu / threads);
  std::cout << j.dump() << std::endl;
  return 0;
}
