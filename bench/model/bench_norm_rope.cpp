// bench_norm_rope: forward + backward of RMSNorm, of the rotary embedding and of SwiGLU on CPU fp32, rlvr's
// one-pass kernels (model::rms_norm, model::apply_rope, model::swiglu) against ATen's composition of the same
// math (what the model ran before, and what transformers' eager modules run), side by side in one process,
// interleaved, best of reps. Default shapes: one update micro-batch of the GRPO step bench (3,200 tokens, hidden
// 128, 4 + 2 heads of 32, intermediate 512) and of the log-probs bench (4,096 tokens, hidden 896, 14 + 2 heads of
// 64, intermediate 4,864). Prints one JSON line per shape.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/decoder.h"

namespace {

at::Tensor composed_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  return w * (x * at::rsqrt(x.pow(2).mean(-1, true) + eps));
}

at::Tensor composed_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {  // x [N, 1, heads, D]
  const int64_t h = x.size(-1) / 2;
  auto rot = at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
  return x * cos.unsqueeze(2) + rot * sin.unsqueeze(2);
}

double seconds(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"RMSNorm, RoPE and SwiGLU forward+backward: one-pass kernels vs ATen's composition"};
  int threads = 2, reps = 20;
  app.add_option("--threads", threads);
  app.add_option("--reps", reps);
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  struct Shape { int64_t N, H, heads, D, I; };
  for (Shape s : {Shape{3200, 128, 6, 32, 512}, Shape{4096, 896, 16, 64, 4864}}) {
    torch::manual_seed(1);
    auto x = at::randn({s.N, s.H}).requires_grad_(true), w = at::randn({s.H}).requires_grad_(true);
    auto gy = at::randn({s.N, s.H});
    auto q = at::randn({s.N, 1, s.heads, s.D}).requires_grad_(true), gq = at::randn({s.N, 1, s.heads, s.D});
    auto cos = at::randn({s.N, 1, s.D}), sin = at::randn({s.N, 1, s.D});
    auto norm = [&](bool fused) {
      auto y = fused ? rlvr::model::rms_norm(x, w, 1e-6) : composed_norm(x, w, 1e-6);
      torch::autograd::grad({y}, {x, w}, {gy});
    };
    auto rope = [&](bool fused) {
      auto y = fused ? rlvr::model::apply_rope(q, cos, sin) : composed_rope(q, cos, sin);
      torch::autograd::grad({y}, {q}, {gq});
    };
    auto gate = at::randn({s.N, s.I}).requires_grad_(true), up = at::randn({s.N, s.I}).requires_grad_(true);
    auto gh = at::randn({s.N, s.I});
    auto glu = [&](bool fused) {
      auto h = fused ? rlvr::model::swiglu(gate, up) : at::silu(gate) * up;
      torch::autograd::grad({h}, {gate, up}, {gh});
    };
    double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    for (int r = 0; r < reps + 1; ++r) {  // the first round warms up
      const double t[6] = {seconds([&] { norm(false); }), seconds([&] { norm(true); }), seconds([&] { rope(false); }),
                           seconds([&] { rope(true); }),  seconds([&] { glu(false); }),  seconds([&] { glu(true); })};
      if (r > 0) for (int i = 0; i < 6; ++i) best[i] = std::min(best[i], t[i]);
    }
    nlohmann::json j{{"tokens", s.N}, {"hidden", s.H}, {"rope_heads", s.heads}, {"head_dim", s.D},
                     {"threads", threads}, {"norm_composed_ms", best[0] * 1e3}, {"norm_fused_ms", best[1] * 1e3},
                     {"norm_ratio", best[1] / best[0]}, {"rope_composed_ms", best[2] * 1e3},
                     {"rope_fused_ms", best[3] * 1e3}, {"rope_ratio", best[3] / best[2]}, {"intermediate", s.I},
                     {"swiglu_composed_ms", best[4] * 1e3}, {"swiglu_fused_ms", best[5] * 1e3},
                     {"swiglu_ratio", best[5] / best[4]}};
    std::cout << j.dump() << std::endl;
  }
  return 0;
}
