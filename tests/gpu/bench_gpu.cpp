// bench_gpu: the measurements of the GPU check on a random model with Qwen2.5-1.5B's shapes (bf16), one part per
// invocation so that the caller can bound each by its own timeout:
//   bench_gpu attention [--device cuda|cpu] [--shapes qwen2.5-1.5b|tiny]
//       which attention kernels run for the training forward+backward, a prefill and a decode step: the profiler's
//       (Kineto) op and kernel names that look like attention, and torch's SDPA choice for the model's inputs
//       (at::_fused_sdp_choice) with the model's boolean mask and, for comparison, as plain causal attention.
//   bench_gpu decode: decode tokens/s at batch 32 and 256 with 1k and 4k cached tokens, against the HBM roofline
//       (weights + the K/V read once per step at --hbm-tbs TB/s, default 4.8 for the H200).
//   bench_gpu ckpt: one gradient-checkpointed micro-batch of 8 x 4096 tokens (forward, token log-probs, backward):
//       seconds, tokens/s and the allocator's peak memory.
// Every result line starts with "bench-gpu:". --shapes tiny (CPU rehearsal) runs the same code on a small model
// with small batches and contexts. Untested on a GPU: no GPU has run it yet.
#include <ATen/ATen.h>
#include <ATen/DeviceAccelerator.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "rollout/kv_cache.h"

using rlvr::model::CausalLM;
using rlvr::model::ForwardOptions;
using rlvr::model::ModelArgs;

namespace {

struct Options {
  std::string part;
  std::string device = "cuda";
  std::string shapes = "qwen2.5-1.5b";
  double hbm_tbs = 4.8;  // HBM bandwidth of the roofline, TB/s (H200: 4.8)
};

ModelArgs shapes_args(const std::string& name) {
  ModelArgs a;
  a.model_type = "qwen2";
  a.tie_word_embeddings = true;
  a.attention_bias = true;
  if (name == "qwen2.5-1.5b") {  // Qwen/Qwen2.5-1.5B config.json
    a.vocab_size = 151936;
    a.hidden_size = 1536;
    a.intermediate_size = 8960;
    a.num_hidden_layers = 28;
    a.num_attention_heads = 12;
    a.num_key_value_heads = 2;
    a.rope_theta = 1e6;
    a.max_position_embeddings = 32768;
  } else if (name == "tiny") {
    a.vocab_size = 300;
    a.hidden_size = 64;
    a.intermediate_size = 128;
    a.num_hidden_layers = 2;
    a.num_attention_heads = 4;
    a.num_key_value_heads = 2;
  } else {
    throw std::invalid_argument("--shapes '" + name + "': expected qwen2.5-1.5b | tiny");
  }
  return a;
}

bool big(const Options& o) { return o.shapes != "tiny"; }

struct Bench {
  Options opt;
  at::Device dev = at::kCPU;
  at::ScalarType dtype = at::kBFloat16;
  std::shared_ptr<CausalLM> lm;
  ModelArgs a;

  explicit Bench(const Options& o) : opt(o) {
    dev = o.device == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
    dtype = dev.is_cuda() ? at::kBFloat16 : at::kFloat;
    a = shapes_args(o.shapes);
    auto t0 = std::chrono::steady_clock::now();
    lm = CausalLM::from_args(a, 1, at::kCPU);
    lm->module().to(dev, dtype);
    int64_t n = 0;
    for (auto& p : lm->parameters()) n += p.numel();
    std::printf("bench-gpu: model %s (random), %.3f B parameters, %s on %s, built in %.1f s\n", o.shapes.c_str(),
                n / 1e9, c10::toString(dtype), dev.str().c_str(), seconds_since(t0));
    std::fflush(stdout);
  }

  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  void sync() const {
    if (dev.is_cuda()) torch::cuda::synchronize();
  }
  int64_t head_dim() const { return a.head_dim > 0 ? a.head_dim : a.hidden_size / a.num_attention_heads; }
  int64_t param_bytes() const {
    int64_t b = 0;
    for (auto& p : lm->parameters()) b += p.numel() * static_cast<int64_t>(p.element_size());
    return b;
  }
  at::TensorOptions ids_opts() const { return at::TensorOptions().dtype(at::kLong).device(dev); }

  // A cache with `slots` rows of `ctx` cached tokens: one row prefilled, then copied (the K/V content does not
  // change the cost of a decode step, and prefilling 256 x 4k tokens would dominate the part's time budget).
  std::unique_ptr<rlvr::rollout::SlotKvCache> filled_cache(int64_t slots, int64_t ctx, int64_t extra) {
    rlvr::rollout::KvCacheShape s{a.num_hidden_layers, a.num_key_value_heads, head_dim(), slots, ctx + extra};
    auto cache = std::make_unique<rlvr::rollout::SlotKvCache>(s, dev, dtype);
    at::NoGradGuard ng;
    auto ids = at::randint(0, a.vocab_size, {1, ctx}, ids_opts());
    ForwardOptions fo;
    fo.logit_positions = at::full({1}, ctx - 1, ids_opts());
    cache->begin_forward({0}, ctx, {ctx});
    lm->forward(ids, at::arange(ctx, ids_opts()).view({1, ctx}), at::Tensor(), cache.get(), fo);
    cache->end_forward();
    for (int64_t s2 = 1; s2 < slots; ++s2) cache->copy_prefix(0, s2, ctx);
    sync();
    return cache;
  }

  // One decode step of every slot (all at the same length).
  void decode_step(rlvr::rollout::SlotKvCache& cache, int64_t B, int64_t pos) {
    std::vector<int64_t> slots(B), ones(B, 1);
    for (int64_t i = 0; i < B; ++i) slots[i] = i;
    auto ids = at::randint(0, a.vocab_size, {B, 1}, ids_opts());
    cache.begin_forward(slots, 1, ones);
    lm->forward(ids, at::full({B, 1}, pos, ids_opts()), at::Tensor(), &cache);
    cache.end_forward();
  }
};

// ---------------------------------------------------------------------------------------------------------------
// attention

bool attention_like(const std::string& n) {
  for (const char* k : {"attention", "attn", "sdpa", "flash", "fmha", "cudnn", "softmax", "bmm", "baddbmm"}) {
    std::string lower = n;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find(k) != std::string::npos) return true;
  }
  return false;
}

template <class F>
void profile_phase(const char* phase, F&& run) {
  using namespace torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  std::set<ActivityType> acts{ActivityType::CPU};
  if (torch::cuda::is_available()) acts.insert(ActivityType::CUDA);
  torch::profiler::impl::ProfilerConfig cfg(torch::profiler::impl::ProfilerState::KINETO);
  prepareProfiler(cfg, acts);
  enableProfiler(cfg, acts);
  run();
  auto result = disableProfiler();
  std::map<std::pair<std::string, std::string>, std::pair<int, double>> seen;  // (where, name) -> (count, ms)
  for (const auto& ev : result->events()) {
    const std::string name = ev.name();
    if (!attention_like(name)) continue;
    const std::string where = ev.deviceType() == c10::DeviceType::CUDA ? "kernel" : "op";
    auto& s = seen[{where, name}];
    s.first += 1;
    s.second += ev.durationNs() / 1e6;
  }
  if (seen.empty()) std::printf("bench-gpu: attention %s: no attention-like op or kernel recorded\n", phase);
  for (const auto& [key, v] : seen) {
    std::printf("bench-gpu: attention %s: %s %s x%d (%.2f ms)\n", phase, key.first.c_str(), key.second.c_str(),
                v.first, v.second);
  }
  std::fflush(stdout);
}

const char* sdp_name(int64_t c) {
  switch (static_cast<at::SDPBackend>(c)) {
    case at::SDPBackend::math: return "math";
    case at::SDPBackend::flash_attention: return "flash";
    case at::SDPBackend::efficient_attention: return "mem-efficient";
    case at::SDPBackend::cudnn_attention: return "cudnn";
    case at::SDPBackend::overrideable: return "overrideable";
    case at::SDPBackend::error: return "error (no backend)";
  }
  return "?";
}

int part_attention(Bench& b) {
  const int64_t B = 2, T = big(b.opt) ? 1024 : 64, Hq = b.a.num_attention_heads, Hkv = b.a.num_key_value_heads,
                D = b.head_dim();
  // torch's choice for the inputs the model builds (model/decoder.cpp): training and prefill pass K/V repeated to
  // Hq heads with a [B, 1, T, T] bool mask; decode passes the query heads grouped per K/V head with a [B, 1, 1, S]
  // mask. The unmasked causal call is what a mask-free path would get.
  auto f = at::TensorOptions().dtype(b.dtype).device(b.dev);
  auto q = at::randn({B, Hq, T, D}, f), k = at::randn({B, Hq, T, D}, f);
  auto mask = at::ones({T, T}, f.dtype(at::kBool)).tril().view({1, 1, T, T}).expand({B, 1, T, T});
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::printf("bench-gpu: attention sdp-choice training/prefill (bool mask [B,1,T,T], T %lld): %s\n",
              static_cast<long long>(T), sdp_name(at::_fused_sdp_choice(q, k, k, mask, 0.0, false, scale)));
  std::printf("bench-gpu: attention sdp-choice same shapes as plain causal (no mask): %s\n",
              sdp_name(at::_fused_sdp_choice(q, k, k, {}, 0.0, true, scale)));
  auto qg = at::randn({B, Hkv, Hq / Hkv, D}, f), kd = at::randn({B, Hkv, T, D}, f);
  auto dmask = at::ones({B, 1, 1, T}, f.dtype(at::kBool));
  std::printf("bench-gpu: attention sdp-choice decode (grouped query heads, bool mask [B,1,1,S]): %s\n",
              sdp_name(at::_fused_sdp_choice(qg, kd, kd, dmask, 0.0, false, scale)));
  std::fflush(stdout);

  auto ids = at::randint(0, b.a.vocab_size, {B, T}, b.ids_opts());
  auto am = at::ones({B, T}, b.ids_opts());
  auto train_step = [&] {
    auto logits = b.lm->forward(ids, at::Tensor(), am);  // [B, T, V]
    rlvr::model::token_logprobs(logits, ids).mean().backward();
    b.sync();
  };
  train_step();  // warm-up (kernel selection, allocator)
  for (auto& p : b.lm->parameters()) p.mutable_grad() = at::Tensor();
  profile_phase("training (forward+backward)", train_step);
  for (auto& p : b.lm->parameters()) p.mutable_grad() = at::Tensor();

  at::NoGradGuard ng;
  rlvr::rollout::KvCacheShape s{b.a.num_hidden_layers, Hkv, D, B, T + 4};
  rlvr::rollout::SlotKvCache cache(s, b.dev, b.dtype);
  profile_phase("prefill", [&] {
    ForwardOptions fo;
    fo.logit_positions = at::full({B}, T - 1, b.ids_opts());
    cache.begin_forward({0, 1}, T, {T, T});
    b.lm->forward(ids, at::arange(T, b.ids_opts()).expand({B, T}), at::Tensor(), &cache, fo);
    cache.end_forward();
    b.sync();
  });
  b.decode_step(cache, B, T);  // warm-up
  profile_phase("decode", [&] {
    b.decode_step(cache, B, T + 1);
    b.sync();
  });
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// decode

int part_decode(Bench& b) {
  const std::vector<int64_t> batches = big(b.opt) ? std::vector<int64_t>{32, 256} : std::vector<int64_t>{2, 4};
  const std::vector<int64_t> ctxs = big(b.opt) ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{32, 128};
  const int64_t warm = 2, steps = big(b.opt) ? 16 : 4;
  const double wbytes = static_cast<double>(b.param_bytes());
  // K and V of one cached token over all layers.
  const double kv_token = 2.0 * b.a.num_hidden_layers * b.a.num_key_value_heads * b.head_dim() *
                          static_cast<double>(c10::elementSize(b.dtype));
  for (int64_t ctx : ctxs) {
    for (int64_t B : batches) {
      at::NoGradGuard ng;
      auto cache = b.filled_cache(B, ctx, warm + steps);
      for (int64_t i = 0; i < warm; ++i) b.decode_step(*cache, B, ctx + i);
      b.sync();
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i) b.decode_step(*cache, B, ctx + warm + i);
      b.sync();
      const double secs = Bench::seconds_since(t0);
      const double tps = static_cast<double>(B * steps) / secs;
      // Roofline: each step reads every weight once and every row's K/V once (mean context over the timed steps).
      const double step_bytes = wbytes + static_cast<double>(B) * (ctx + warm + steps / 2.0) * kv_token;
      const double roof_tps = static_cast<double>(B) / (step_bytes / (b.opt.hbm_tbs * 1e12));
      std::printf(
          "bench-gpu: decode batch %lld context %lld: %.0f tokens/s (%.2f ms/step); roofline at %.1f TB/s %.0f "
          "tokens/s (%.2f GB/step): %.1f%% of roofline\n",
          static_cast<long long>(B), static_cast<long long>(ctx), tps, 1e3 * secs / steps, b.opt.hbm_tbs, roof_tps,
          step_bytes / 1e9, 100.0 * tps / roof_tps);
      std::fflush(stdout);
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// ckpt

int part_ckpt(Bench& b) {
  const int64_t B = big(b.opt) ? 8 : 2, T = big(b.opt) ? 4096 : 128;
  auto ids = at::randint(0, b.a.vocab_size, {B, T}, b.ids_opts());
  auto am = at::ones({B, T}, b.ids_opts());
  ForwardOptions fo;
  fo.gradient_checkpointing = true;
  const bool cuda = b.dev.is_cuda();
  if (cuda) {
    b.sync();
    at::accelerator::resetPeakStats(0);
  }
  const double base = cuda ? at::accelerator::getDeviceStats(0).allocated_bytes[0].current : 0.0;
  auto t0 = std::chrono::steady_clock::now();
  auto logits = b.lm->forward(ids, at::Tensor(), am, nullptr, fo);                 // [B, T, V]
  auto lp = rlvr::model::token_logprobs(logits.narrow(1, 0, T - 1), ids.narrow(1, 1, T - 1));  // [B, T-1] fp32
  lp.mean().backward();
  b.sync();
  const double secs = Bench::seconds_since(t0);
  double gnorm = 0;
  for (auto& p : b.lm->parameters()) {
    if (p.grad().defined()) gnorm += p.grad().to(at::kFloat).pow(2).sum().item<double>();
  }
  std::printf("bench-gpu: ckpt micro-batch %lld x %lld tokens, gradient checkpointing: %.2f s forward+backward, "
              "%.0f tokens/s, grad norm %.3g\n",
              static_cast<long long>(B), static_cast<long long>(T), secs, B * T / secs, std::sqrt(gnorm));
  if (cuda) {
    auto st = at::accelerator::getDeviceStats(0);
    std::printf("bench-gpu: ckpt peak allocated %.2f GiB (allocated before the forward: %.2f GiB), peak reserved %.2f GiB\n",
                st.allocated_bytes[0].peak / 1073741824.0, base / 1073741824.0,
                st.reserved_bytes[0].peak / 1073741824.0);
  } else {
    std::printf("bench-gpu: ckpt peak memory: not measured on CPU (CUDA allocator statistics only)\n");
  }
  std::fflush(stdout);
  return 0;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "bench_gpu: %s\nusage: bench_gpu attention|decode|ckpt [--device cuda|cpu] "
               "[--shapes qwen2.5-1.5b|tiny] [--hbm-tbs 4.8]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--device") {
        o.device = value();
      } else if (a == "--shapes") {
        o.shapes = value();
      } else if (a == "--hbm-tbs") {
        o.hbm_tbs = std::stod(value());
      } else if (!a.empty() && a[0] != '-' && o.part.empty()) {
        o.part = a;
      } else {
        return usage(("unknown argument '" + a + "'").c_str());
      }
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (o.part != "attention" && o.part != "decode" && o.part != "ckpt") return usage("which part? attention | decode | ckpt");
  if (o.device != "cuda" && o.device != "cpu") return usage(("--device '" + o.device + "': expected cuda | cpu").c_str());
  if (o.device == "cuda" && !torch::cuda::is_available()) {
    std::printf("bench-gpu: SKIPPED %s: CUDA is not available (torch::cuda::is_available() is false)\n", o.part.c_str());
    return 0;
  }
  try {
    if (o.shapes != "qwen2.5-1.5b" && o.shapes != "tiny") shapes_args(o.shapes);
    Bench b(o);
    if (o.part == "attention") return part_attention(b);
    if (o.part == "decode") return part_decode(b);
    return part_ckpt(b);
  } catch (const std::invalid_argument& e) {
    return usage(e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu %s: %s\n", o.part.c_str(), e.what());
    return 1;
  }
}
