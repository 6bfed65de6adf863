// The [gpu] tests: what only a CUDA device can show. Each prints the quantity it compares on stdout (one
// "gpu-check:" line), so the device log records the measured difference, not only pass/fail.
//   - the CUDA forward equals the CPU forward of the same weights (fp32 tight; bf16 within bf16 rounding);
//   - a bf16 optimizer step moves the weights by about lr (Adam's first step), i.e. nothing is lost to bf16;
//   - KV-cache decode (the rollout's SlotKvCache) equals the full forward on CUDA;
//   - the sampler's log-probs equal the trainer's token_logprobs on the same tokens (largest difference printed);
//   - a 1-rank NCCL communicator is really initialised (not the local shortcut) and its collectives are exact.
// Without CUDA, gpu_main.cpp skips them all with one message (exit 0). Untested: no GPU has run them yet.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "model/causal_lm.h"
#include "rollout/engine.h"
#include "rollout/kv_cache.h"
#include "trainer/config.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/launcher.h"
#include "trainer/optimizer.h"
#include "trainer/policy.h"

using namespace rlvr;
using model::CausalLM;
using model::ModelArgs;

namespace {

// Small, but with the real head_dim (128) and GQA ratio (6:1) of Qwen2.5-1.5B, so the attention kernels see
// the shapes they see at scale.
ModelArgs small_args() {
  ModelArgs a;
  a.model_type = "qwen2";
  a.vocab_size = 1000;
  a.hidden_size = 768;
  a.intermediate_size = 1024;
  a.num_hidden_layers = 2;
  a.num_attention_heads = 6;
  a.num_key_value_heads = 1;
  a.attention_bias = true;
  a.tie_word_embeddings = true;
  return a;
}

std::shared_ptr<CausalLM> on_cuda(const ModelArgs& a, uint64_t seed, at::ScalarType dtype) {
  auto lm = CausalLM::from_args(a, seed, at::kCPU);  // same weights on every device (initialised on CPU)
  lm->module().to(at::Device(at::kCUDA, 0), dtype);
  return lm;
}

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

void report(const std::string& what, double value, double bound) {
  std::printf("gpu-check: %s = %.3g (bound %.3g)\n", what.c_str(), value, bound);
  std::fflush(stdout);
}

}  // namespace

TEST_CASE("CUDA forward equals the CPU forward of the same weights", "[gpu]") {
  auto a = small_args();
  auto cpu = CausalLM::from_args(a, 11, at::kCPU);
  at::NoGradGuard ng;
  at::manual_seed(3);
  auto ids = at::randint(0, a.vocab_size, {3, 40}, at::kLong);  // [3, 40]
  auto mask = at::ones({3, 40}, at::kLong);
  mask[2].narrow(0, 30, 10).zero_();  // one right-padded row: the masked SDPA path too
  auto ref = cpu->forward(ids, at::Tensor(), mask);  // [3, 40, V] fp32
  const double scale = 1.0 + max_abs(ref);
  auto valid = mask.to(at::kBool).unsqueeze(-1);  // [3, 40, 1]: padded positions are not compared

  auto gpu32 = on_cuda(a, 11, at::kFloat);
  auto out32 = gpu32->forward(ids, at::Tensor(), mask).cpu().to(at::kFloat);
  double d32 = max_abs((out32 - ref).masked_fill(valid.logical_not(), 0));
  report("fp32 CUDA vs CPU max |logit diff| / (1 + max |logit|)", d32 / scale, 1e-4);
  CHECK(d32 / scale < 1e-4);  // TF32 is off by default in LibTorch: fp32 GEMMs in a different order

  auto gpu16 = on_cuda(a, 11, at::kBFloat16);
  auto out16 = gpu16->forward(ids, at::Tensor(), mask).cpu().to(at::kFloat);
  double d16 = max_abs((out16 - ref).masked_fill(valid.logical_not(), 0));
  report("bf16 CUDA vs fp32 CPU max |logit diff| / (1 + max |logit|)", d16 / scale, 5e-2);
  CHECK(d16 / scale < 5e-2);  // bf16 weights and activations: ~3 significant digits through 2 layers
  auto agree = out16.argmax(-1).eq(ref.argmax(-1)).masked_select(mask.to(at::kBool)).to(at::kFloat).mean();
  report("bf16 CUDA argmax agreement with CPU", agree.item<double>(), 0.9);
  CHECK(agree.item<double>() > 0.9);
}

TEST_CASE("a bf16 optimizer step moves the weights by about lr", "[gpu]") {
  // model.dtype bf16: the weights the forward uses are bf16. Adam's first step moves every parameter with a
  // non-zero gradient by lr * g / (|g| + eps) ~ lr. At lr 1e-6 that is far below bf16's spacing (2^-8 relative,
  // ~6e-5 at |w| = 0.016): an update applied to bf16 weights directly is rounded away, so the optimizer must
  // update an fp32 copy (master weights) and write the rounded value back into the bf16 weights.
  ModelConfig mc;
  mc.path = "builtin:tiny";
  mc.dtype = "bf16";
  auto scratch = std::filesystem::temp_directory_path() / "rlvr_test_gpu_policy";
  auto policy = trainer::load_policy(mc, scratch, 5, at::Device(at::kCUDA, 0));
  REQUIRE(policy.model->parameters()[0].scalar_type() == at::kBFloat16);
  OptimConfig oc;
  oc.lr = 1e-6;
  oc.max_grad_norm = 0;  // measure only: the step size must be lr, not a clipped fraction of it
  trainer::TrainOptimizer opt(oc, policy.model->named_parameters(), 10);

  // The tensors AdamW updates (fp32 master copies once the optimizer keeps them), before the step.
  std::vector<at::Tensor> held, before;
  for (auto& g : opt.adamw().param_groups()) {
    for (auto& p : g.params()) {
      held.push_back(p);
      before.push_back(p.detach().to(at::kFloat).clone());
    }
  }
  at::manual_seed(9);
  auto ids = at::randint(0, policy.model->args().vocab_size, {2, 16}, at::kLong).cuda();  // [2, 16]
  opt.zero_grad();
  auto logits = policy.model->forward(ids, at::Tensor(), at::Tensor());  // [2, 16, V] bf16
  model::token_logprobs(logits, ids).mean().neg().backward();
  auto r = opt.step();
  REQUIRE_FALSE(r.skipped);
  CHECK(r.lr == Approx(1e-6));

  double moved = 0, count = 0;
  for (size_t i = 0; i < held.size(); ++i) {
    moved += (held[i].detach().to(at::kFloat) - before[i]).abs().sum().item<double>();
    count += static_cast<double>(held[i].numel());
  }
  const double mean_step = moved / count;
  report("bf16 step: mean |update| of the optimizer's weights / lr", mean_step / oc.lr, 0.5);
  CHECK(mean_step / oc.lr > 0.5);  // ~1 with master weights; ~0.01 when bf16 rounding eats the update
  CHECK(mean_step / oc.lr < 1.5);
  // The model's bf16 weights are the optimizer's weights rounded to bf16 (the copy back after the step).
  auto mp = policy.model->parameters();
  REQUIRE(mp.size() == held.size());
  double copy_err = 0;
  for (size_t i = 0; i < mp.size(); ++i) {
    copy_err = std::max(copy_err, max_abs(mp[i].detach().to(at::kFloat) -
                                          held[i].detach().to(at::kBFloat16).to(at::kFloat)));
  }
  report("bf16 step: max |model weight - bf16(optimizer weight)|", copy_err, 0);
  CHECK(copy_err == 0);
}

TEST_CASE("KV-cache decode equals the full forward on CUDA", "[gpu]") {
  auto a = small_args();
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    const bool bf16 = dtype == at::kBFloat16;
    INFO((bf16 ? "bf16" : "fp32"));
    auto lm = on_cuda(a, 21, dtype);
    at::NoGradGuard ng;
    at::manual_seed(4);
    const int64_t B = 3, P = 7, N = 6, L = P + N;
    auto ids = at::randint(0, a.vocab_size, {B, L}, at::kLong).cuda();          // [B, L]
    auto full = lm->forward(ids, at::Tensor(), at::Tensor()).to(at::kFloat);      // [B, L, V]
    rollout::KvCacheShape shape{a.num_hidden_layers, a.num_key_value_heads, a.hidden_size / a.num_attention_heads,
                                /*slots=*/4, /*max_len=*/32};
    rollout::SlotKvCache cache(shape, lm->device(), dtype);
    const std::vector<int64_t> slots{0, 1, 2};
    auto pos = at::arange(L, at::TensorOptions().dtype(at::kLong).device(lm->device())).expand({B, L});
    cache.begin_forward(slots, P, {P, P, P});
    auto pre = lm->forward(ids.narrow(1, 0, P), pos.narrow(1, 0, P), at::Tensor(), &cache).to(at::kFloat);
    cache.end_forward();
    double worst = max_abs(pre - full.narrow(1, 0, P));
    for (int64_t t = P; t < L; ++t) {
      cache.begin_forward(slots, 1, {1, 1, 1});
      auto step = lm->forward(ids.narrow(1, t, 1), pos.narrow(1, t, 1), at::Tensor(), &cache).to(at::kFloat);
      cache.end_forward();
      worst = std::max(worst, max_abs(step - full.narrow(1, t, 1)));
    }
    const double rel = worst / (1.0 + max_abs(full));
    const double bound = bf16 ? 3e-2 : 1e-4;
    report(std::string(bf16 ? "bf16" : "fp32") + " decode vs full forward max |logit diff| / (1 + max |logit|)", rel,
           bound);
    CHECK(rel < bound);
  }
}

TEST_CASE("sampler log-probs equal the trainer log-probs on CUDA", "[gpu]") {
  auto a = small_args();
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    const bool bf16 = dtype == at::kBFloat16;
    auto lm = on_cuda(a, 31, dtype);
    rollout::RolloutEngine engine(lm, {.max_batch_seqs = 8, .seed = 17});
    rollout::SamplingParams sp;
    sp.max_new_tokens = 24;
    sp.temperature = 0.8;
    sp.ignore_eos = true;
    const std::vector<std::vector<int64_t>> prompts{{5, 6, 7, 8, 9}, {100, 200, 300}, {42}};
    auto out = engine.generate(prompts, sp, 3);  // 9 completions
    // The trainer's view: prompt + completion right-padded, attention mask, no cache, logits / T.
    const int64_t B = static_cast<int64_t>(out.size());
    int64_t L = 0;
    for (const auto& c : out) L = std::max<int64_t>(L, prompts[c.prompt_index].size() + c.ids.size());
    auto tokens = at::zeros({B, L}, at::kLong), mask = at::zeros({B, L}, at::kLong);
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int64_t> seq = prompts[out[b].prompt_index];
      seq.insert(seq.end(), out[b].ids.begin(), out[b].ids.end());
      tokens[b].narrow(0, 0, seq.size()).copy_(at::tensor(seq, at::kLong));
      mask[b].narrow(0, 0, seq.size()).fill_(1);
    }
    at::NoGradGuard ng;
    auto logits = lm->forward(tokens.cuda(), at::Tensor(), mask.cuda());  // [B, L, V]
    auto lp = model::token_logprobs(logits.narrow(1, 0, L - 1) / sp.temperature, tokens.narrow(1, 1, L - 1).cuda())
                  .cpu();  // [B, L - 1] fp32
    double worst = 0, sum = 0, n = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t P = prompts[out[b].prompt_index].size();
      for (size_t t = 0; t < out[b].ids.size(); ++t) {
        const double d = std::abs(lp[b][P - 1 + t].item<double>() - out[b].logprobs[t]);
        worst = std::max(worst, d);
        sum += d;
        n += 1;
      }
    }
    REQUIRE(n == B * sp.max_new_tokens);
    std::printf("gpu-check: %s sampler vs trainer log-probs: max |diff| = %.3g, mean |diff| = %.3g over %d tokens\n",
                bf16 ? "bf16" : "fp32", worst, sum / n, static_cast<int>(n));
    std::fflush(stdout);
    // fp32: the same math in a different order. bf16: decode and full forward round differently; the printed
    // maximum is what the GRPO importance ratio sees at the first step (exp(diff) - 1).
    CHECK(worst < (bf16 ? 0.5 : 1e-3));
  }
}

TEST_CASE("a 1-rank NCCL communicator is really initialised and its collectives are exact", "[gpu]") {
  auto built = dist::available_backends();
  REQUIRE(std::find(built.begin(), built.end(), "nccl") != built.end());  // a build linked with CUDA
  dist::WorldInfo w;
  w.source = "gpu-check";  // not "none": the real backend even at world_size 1
  w.master_port = dist::pick_free_port();
  DistributedConfig cfg;
  cfg.backend = "nccl";
  cfg.timeout_s = 60;
  auto c = dist::make_communicator(cfg, at::Device(at::kCUDA, 0), w);
  REQUIRE(c->backend() == "nccl");
  CHECK(c->device().is_cuda());
  auto opts = at::TensorOptions().device(c->device());
  auto x = at::arange(1000, opts.dtype(at::kFloat)) * 0.5 - 7;  // [1000]
  auto y = x.clone();
  c->all_reduce(y, dist::ReduceOp::sum);
  CHECK(at::equal(y.cpu(), x.cpu()));
  c->all_reduce(y, dist::ReduceOp::avg);
  CHECK(at::equal(y.cpu(), x.cpu()));
  auto bf = x.to(at::kBFloat16);
  std::vector<at::Tensor> several{bf, at::ones({3, 4}, opts.dtype(at::kLong))};
  c->all_reduce(several, dist::ReduceOp::max);
  CHECK(at::equal(several[0].cpu(), x.to(at::kBFloat16).cpu()));
  CHECK(several[1].sum().item<int64_t>() == 12);
  auto g = c->all_gather(x.view({10, 100}));  // [1, 10, 100]
  CHECK(g.sizes() == at::IntArrayRef({1, 10, 100}));
  CHECK(at::equal(g[0].view({-1}).cpu(), x.cpu()));
  CHECK(at::equal(c->reduce_scatter(x).cpu(), x.cpu()));
  c->broadcast(y, 0);
  c->barrier();
  CHECK(c->bytes_reduced() > 0);
  std::printf("gpu-check: NCCL 1-rank communicator on %s: %lld bytes through all-reduce/all-gather/reduce-scatter\n",
              c->device().str().c_str(), static_cast<long long>(c->bytes_reduced()));
  std::fflush(stdout);
}
