// The one-pass CPU fp32 RMSNorm and rotary embedding (model/norm_rope_kernels.h behind rms_norm / apply_rope)
// against ATen's composition run in fp64 (the same functions take that path for fp64 inputs), in value and
// gradient, with worst-case fp32 rounding bounds derived below; their independence of the thread count; and a
// whole model's logits and parameter gradients against the same model in fp64.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cmath>
#include <limits>

#include "model/causal_lm.h"
#include "model/decoder.h"
#include "model/parallel.h"
#include "model_fixtures.h"

using namespace rlvr::model;

namespace {

const double u = std::ldexp(1.0, -24);  // fp32 unit roundoff

double max_excess(const at::Tensor& err, const at::Tensor& tol) { return (err - tol).max().item<double>(); }

std::string grad_fn_name(const at::Tensor& t) { return t.grad_fn() ? t.grad_fn()->name() : ""; }

at::Tensor rotate_half_abs(const at::Tensor& x) {  // |rotate_half(x)| = (|x2|, |x1|)
  const int64_t h = x.size(-1) / 2;
  return at::cat({x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1).abs();
}

}  // namespace

// With n the row length, s = 1 / sqrt(mean(x^2) + eps), yhat = x s, a = g w, c = mean(a yhat):
//  - the sum of n squares errs by at most n u relative (any summation order); the mean, + eps, sqrt and the
//    division add 4 roundings; s then errs by (n / 2 + 4) u relative, and y = w (x s) by (n / 2 + 6) u;
//  - dx = s (a - yhat c): c is a length-n dot of 3-rounding terms, (n + 4) u of sum |a yhat| / n, on top of s's
//    error; dx errs by at most (n + 10) u s (|a| + |yhat| sum |a yhat| / n);
//  - dw = sum over rows of g yhat: (rows + 4) u of sum |g yhat| (blocks of 64 rows, then the blocks), plus s's.
TEST_CASE("rms_norm on CPU fp32 equals the fp64 composition in value and gradient", "[model][norm]") {
  for (auto shape : {std::vector<int64_t>{3, 67, 37}, std::vector<int64_t>{130, 128}}) {
    SECTION("shape " + c10::str(at::IntArrayRef(shape))) {
      torch::manual_seed(3);
      const double eps = 1e-6;
      auto x = (at::randn(shape) * 3).requires_grad_(true);
      auto w = (at::randn({shape.back()}) + 1).requires_grad_(true);
      auto G = at::randn(shape);  // the loss sum(G * y)
      auto y = rms_norm(x, w, eps);
      CHECK(grad_fn_name(y).find("RmsNormFn") != std::string::npos);  // the one-pass path ran
      auto g = torch::autograd::grad({(G * y).sum()}, {x, w});

      auto x64 = x.detach().to(at::kDouble).requires_grad_(true), w64 = w.detach().to(at::kDouble).requires_grad_(true);
      auto y64 = rms_norm(x64, w64, eps);
      CHECK(grad_fn_name(y64).find("RmsNormFn") == std::string::npos);  // the composition
      auto G64 = G.to(at::kDouble);
      auto g64 = torch::autograd::grad({(G64 * y64).sum()}, {x64, w64});

      const int64_t n = shape.back(), rows = x.numel() / n;
      auto xd = x.detach().to(at::kDouble);
      auto s = at::rsqrt(xd.pow(2).mean(-1, true) + eps);                 // [.., 1]
      auto yhat = xd * s, a = G64 * w64.detach();
      auto tol_y = (n / 2.0 + 6) * u * y64.detach().abs();
      CHECK(max_excess((y.detach().to(at::kDouble) - y64.detach()).abs(), tol_y) <= 0);
      auto sum_ay = (a * yhat).abs().sum(-1, true) / n;                   // [.., 1]
      auto tol_dx = (n + 10) * u * s * (a.abs() + yhat.abs() * sum_ay);
      CHECK(max_excess((g[0].to(at::kDouble) - g64[0]).abs(), tol_dx) <= 0);
      auto gy = (G64 * yhat).abs().reshape({rows, n}).sum(0);             // [n]
      auto tol_dw = (rows + n / 2.0 + 8) * u * gy;
      CHECK(max_excess((g[1].to(at::kDouble) - g64[1]).abs(), tol_dw) <= 0);
      // The bounds are tight enough to mean something, and the compared gradients are not ~0.
      CHECK(tol_dx.max().item<double>() < 1e-4 * g64[0].abs().max().item<double>());
      CHECK(g64[0].abs().max().item<double>() > 1e-2);
      CHECK(g64[1].abs().max().item<double>() > 1e-2);
      // A wrong eps is caught by the value bound.
      CHECK(max_excess((rms_norm(x.detach(), w.detach(), 1e-1).to(at::kDouble) - y64.detach()).abs(), tol_y) > 0);
    }
  }
}

// y_i = x_i c_i - x_{i+h} s_i is two products and a difference: at most 2 u (|x_i c_i| + |x_{i+h} s_i|) off; the
// backward dx_i = g_i c_i + g_{i+h} s_{i+h} likewise with g.
TEST_CASE("apply_rope on CPU fp32 equals the fp64 composition in value and gradient", "[model][rope]") {
  torch::manual_seed(4);
  const int64_t B = 2, T = 5, Hn = 3, D = 8;
  // General tables (HF's repeat each half: c_i = c_{i+h}; these need not).
  auto cos = at::randn({B, T, D}), sin = at::randn({B, T, D});
  auto base = at::randn({B, Hn, T, D});
  auto x = base.transpose(1, 2).requires_grad_(false).clone().requires_grad_(true);  // [B, T, heads, D]
  auto G = at::randn({B, T, Hn, D});
  auto y = apply_rope(x, cos, sin);
  CHECK(grad_fn_name(y).find("RopeFn") != std::string::npos);
  auto gx = torch::autograd::grad({(G * y).sum()}, {x})[0];

  auto x64 = x.detach().to(at::kDouble).requires_grad_(true);
  auto y64 = apply_rope(x64, cos.to(at::kDouble), sin.to(at::kDouble));
  auto gx64 = torch::autograd::grad({(G.to(at::kDouble) * y64).sum()}, {x64})[0];

  auto c = cos.to(at::kDouble).unsqueeze(2).abs(), s = sin.to(at::kDouble).unsqueeze(2).abs();  // [B, T, 1, D]
  auto xa = x.detach().to(at::kDouble).abs(), ga = G.to(at::kDouble).abs();
  auto tol_y = 2 * u * (xa * c + rotate_half_abs(xa) * s);
  auto tol_g = 2 * u * (ga * c + rotate_half_abs(ga * s));
  CHECK(max_excess((y.detach().to(at::kDouble) - y64.detach()).abs(), tol_y) <= 0);
  CHECK(max_excess((gx.to(at::kDouble) - gx64).abs(), tol_g) <= 0);
  CHECK(gx64.abs().max().item<double>() > 1e-2);
  // A non-contiguous input (the transposed view itself) gives the same rotation.
  CHECK(at::equal(apply_rope(base.transpose(1, 2), cos, sin), y.detach()));
  // Tables that broadcast over the batch take the composition (the kernel reads one row per position).
  auto yb = apply_rope(x.detach(), cos.narrow(0, 0, 1), sin.narrow(0, 0, 1));
  auto yb64 = apply_rope(x64.detach(), cos.narrow(0, 0, 1).to(at::kDouble), sin.narrow(0, 0, 1).to(at::kDouble));
  CHECK((yb.to(at::kDouble) - yb64).abs().max().item<double>() < 1e-5);
  CHECK_FALSE(at::allclose(yb, y.detach()));  // row 1 used row 0's tables
  // The backward is not the forward's rotation: a sign slip would be caught by the bound.
  auto wrong = apply_rope(G, cos, sin).to(at::kDouble);
  CHECK(max_excess((wrong - gx64).abs(), tol_g) > 0);
}

// SwiGLU h = g s u with s = sigmoid(g) = 1 / (1 + exp(-g)). The kernel's exp is within 2 ulp (4u) of exp's,
// then 1 + e and the division add 2 roundings: s errs by at most 6u relative. Then:
//  - h = (g s) u: 2 more roundings, |dh| <= 8u |g s u|;
//  - du = gh (g s): the same, 8u |gh g s|;
//  - dg = gh u (s B), B = 1 + g (1 - s): 1 - s errs by 6u s + u (1 - s) absolutely, so B by
//    |g| (6u s + 2u (1 - s)) + u |B| <= 8u |g| + u |B|; s B adds 7u relative, gh u 2 roundings:
//    |d dg| <= |gh u| s (8u |g| + 10u |B|).
// The tolerances are twice these, plus 1e-34 absolute: below g = -87 the kernel's sigmoid is 0 or a denormal
// (its exp is clamped at 88.7), where fp64's silu is g e^g ~ 1e-36.
TEST_CASE("swiglu on CPU fp32 equals the fp64 composition in value and gradient", "[model][norm]") {
  torch::manual_seed(11);
  auto g = at::randn({301, 37}) * 4;
  auto flat = g.view({-1});
  const float special[] = {0.0f, -0.0f, 1e-8f, -1.2785f, 20.0f, -20.0f, 87.0f, -87.0f, 88.5f, -88.5f, 95.0f, -95.0f};
  for (int i = 0; i < 12; ++i) flat[i] = special[i];
  g.requires_grad_(true);
  auto up = (at::randn({301, 37}) * 2).requires_grad_(true);
  auto G = at::randn({301, 37});  // the loss sum(G * h)
  auto h = swiglu(g, up);
  CHECK(grad_fn_name(h).find("SwigluFn") != std::string::npos);  // the one-pass path ran
  auto gr = torch::autograd::grad({(G * h).sum()}, {g, up});

  auto g64 = g.detach().to(at::kDouble).requires_grad_(true), u64 = up.detach().to(at::kDouble).requires_grad_(true);
  auto h64 = swiglu(g64, u64);
  CHECK(grad_fn_name(h64).find("SwigluFn") == std::string::npos);  // ATen's silu and product
  auto G64 = G.to(at::kDouble);
  auto gr64 = torch::autograd::grad({(G64 * h64).sum()}, {g64, u64});

  auto gd = g.detach().to(at::kDouble), ud = up.detach().to(at::kDouble);
  auto s = at::sigmoid(gd), B = 1 + gd * (1 - s);
  const double tiny = 1e-34;
  auto tol_h = 16 * u * (gd * s * ud).abs() + tiny;
  auto tol_du = 16 * u * (G64 * gd * s).abs() + tiny;
  auto tol_dg = 2 * (G64 * ud).abs() * s * (8 * u * gd.abs() + 10 * u * B.abs()) + tiny;
  CHECK(max_excess((h.detach().to(at::kDouble) - h64.detach()).abs(), tol_h) <= 0);
  CHECK(max_excess((gr[1].to(at::kDouble) - gr64[1]).abs(), tol_du) <= 0);
  CHECK(max_excess((gr[0].to(at::kDouble) - gr64[0]).abs(), tol_dg) <= 0);
  CHECK(gr64[0].abs().max().item<double>() > 1);
  // The bounds are not loose: they catch a derivative that forgets the sigmoid's own (dg = gh u s), and a value
  // off by 64u relative.
  CHECK(max_excess(((G64 * ud * s) - gr64[0]).abs(), tol_dg) > 0);
  CHECK(max_excess((gd * s * ud * (1 + 64 * u) - h64.detach()).abs(), tol_h) > 0);
  // Saturation: silu(95) = 95, silu(-95) = 0 (to fp32), and no NaN from the clamp.
  CHECK(at::isfinite(h).all().item<bool>());
  CHECK(at::isfinite(gr[0]).all().item<bool>());
  // Without a graph (generation), the same values.
  at::Tensor plain;
  {
    at::NoGradGuard ng;
    plain = swiglu(g.detach(), up.detach());
  }
  CHECK(at::equal(plain, h.detach()));
  // A NaN stays a NaN (a non-finite step must still be seen as one).
  auto gn = g.detach().clone();
  gn.view({-1})[20] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(swiglu(gn, up.detach()).view({-1})[20].item<float>()));
}

TEST_CASE("rms_norm and apply_rope give the same bits for any thread count", "[model][norm]") {
  torch::manual_seed(5);
  auto x = at::randn({300, 128}), w = at::randn({128}), G = at::randn({300, 128});
  auto cos = at::randn({300, 1, 32}), sin = at::randn({300, 1, 32}), q = at::randn({300, 1, 4, 32});
  auto run = [&](int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    auto xr = x.clone().requires_grad_(true), wr = w.clone().requires_grad_(true), qr = q.clone().requires_grad_(true);
    auto y = rms_norm(xr, wr, 1e-6);
    auto r = apply_rope(qr, cos, sin);
    auto g = torch::autograd::grad({(G * y).sum() + r.sum()}, {xr, wr, qr});
    at::set_num_threads(before);
    return std::vector<at::Tensor>{y.detach(), g[0], g[1], r.detach(), g[2]};
  };
  auto one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); ++i) CHECK(at::equal(one[i], two[i]));
  // The kernels' grain is 32,768 elements: 300 rows of 128 do split across 2 threads.
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  CHECK(parallel_chunks_threads(300, 32768 / 128) == 2);
  at::set_num_threads(before);
}

TEST_CASE("a model through the one-pass kernels gives the fp64 model's logits and gradients", "[model][norm]") {
  for (const char* type : {"qwen2", "llama", "qwen3"}) {
    SECTION(type) {
      ModelArgs a;
      a.model_type = type;
      a.vocab_size = 61;
      a.hidden_size = 32;
      a.intermediate_size = 48;
      a.num_hidden_layers = 2;
      a.num_attention_heads = 4;
      a.num_key_value_heads = 2;
      a.attention_bias = std::string(type) == "qwen2";
      a.qk_norm = std::string(type) == "qwen3";
      auto lm = CausalLM::from_args(a, 7, at::kCPU);
      auto lm64 = CausalLM::from_args(a, 7, at::kCPU);
      lm64->module().to(at::kDouble);
      auto ids = at::randint(0, a.vocab_size, {2, 9}, at::kLong);
      auto mask = at::ones({2, 9}, at::kLong);
      mask[1].narrow(0, 6, 3).zero_();  // right padding: the causal path without a mask
      auto loss_of = [&](CausalLM& m) {
        auto logits = m.forward(ids, at::Tensor(), mask);  // [2, 9, V]
        auto lp = at::log_softmax(logits, -1).narrow(1, 0, 8).gather(2, ids.narrow(1, 1, 8).unsqueeze(2)).squeeze(2);
        return std::make_pair(logits, (lp * mask.narrow(1, 1, 8).to(lp.scalar_type())).sum());
      };
      auto [logits, loss] = loss_of(*lm);
      auto [logits64, loss64] = loss_of(*lm64);
      CHECK((logits.detach().to(at::kDouble) - logits64.detach()).abs().max().item<double>() < 1e-5);
      loss.backward();
      loss64.backward();
      auto p = lm->parameters(), p64 = lm64->parameters();
      REQUIRE(p.size() == p64.size());
      for (size_t i = 0; i < p.size(); ++i) {
        const double scale = p64[i].grad().abs().max().item<double>();
        CHECK(scale > 0);
        CHECK((p[i].grad().to(at::kDouble) - p64[i].grad()).abs().max().item<double>() <= 1e-4 * scale);
      }
    }
  }
}
