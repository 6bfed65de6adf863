// The optimizer side: LR schedule values by hand, no-decay grouping by name/shape, one AdamW step by hand,
// global-norm clipping (and non-finite detection), and a save/load round trip that resumes bit-exactly.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>

#include "common/error.h"
#include "trainer/config.h"
#include "trainer/optimizer.h"

using namespace rlvr;
using namespace rlvr::trainer;

TEST_CASE("lr schedule: warmup then constant, linear or cosine to min_lr_ratio", "[trainer][optimizer]") {
  // warmup 10, total 110 -> decay over 100 steps; floor m = 0.1
  auto mult = [](LrSchedule s, int64_t step) { return lr_multiplier(s, step, 10, 110, 0.1); };
  for (auto s : {LrSchedule::constant, LrSchedule::linear, LrSchedule::cosine}) {
    CHECK(mult(s, 0) == 0.0);   // HF/verl convention: step / warmup, so the very first step has lr 0
    CHECK(mult(s, 5) == 0.5);   // 5 / 10
    CHECK(mult(s, 10) == 1.0);  // p = 0
  }
  CHECK(mult(LrSchedule::constant, 60) == 1.0);
  CHECK(mult(LrSchedule::constant, 1000) == 1.0);
  // linear: m + (1 - m)(1 - p). step 35: p = 25/100 -> 0.1 + 0.9 * 0.75 = 0.775; step 60: p = 1/2 -> 0.55
  CHECK(mult(LrSchedule::linear, 35) == Approx(0.775));
  CHECK(mult(LrSchedule::linear, 60) == Approx(0.55));
  CHECK(mult(LrSchedule::linear, 110) == Approx(0.1));
  CHECK(mult(LrSchedule::linear, 500) == Approx(0.1));  // past the end: the floor
  // cosine: m + (1 - m) * (1 + cos(pi p)) / 2. p = 1/4: 0.1 + 0.9 * (1 + 0.70710678) / 2 = 0.8681980515;
  // p = 1/2: 0.1 + 0.9 * 0.5 = 0.55; p = 1: 0.1; past the end stays 0.1 (no second cosine cycle)
  CHECK(mult(LrSchedule::cosine, 35) == Approx(0.8681980515));
  CHECK(mult(LrSchedule::cosine, 60) == Approx(0.55));
  CHECK(mult(LrSchedule::cosine, 110) == Approx(0.1));
  CHECK(mult(LrSchedule::cosine, 300) == Approx(0.1));
  // no warmup, min 0: cosine step 0 = 1, step total/2 = 0.5
  CHECK(lr_multiplier(LrSchedule::cosine, 0, 0, 100, 0.0) == 1.0);
  CHECK(lr_multiplier(LrSchedule::cosine, 50, 0, 100, 0.0) == Approx(0.5));

  OptimConfig o;
  o.lr = 2e-6;
  o.schedule = "linear";
  o.warmup_steps = 4;
  CHECK(lr_at(o, 2, 14) == Approx(1e-6));  // 2e-6 * 2/4
  CHECK(lr_at(o, 9, 14) == Approx(1e-6));  // 2e-6 * (1 - 5/10)
  o.schedule = "cosinus";
  CHECK_THROWS_AS(lr_at(o, 0, 10), ConfigError);
  CHECK_THROWS_WITH(parse_lr_schedule("cosinus"), Catch::Matchers::Contains("constant, linear, cosine"));
  CHECK_THROWS_WITH(lr_multiplier(LrSchedule::linear, 0, 0, 10, 1.5), Catch::Matchers::Contains("min_lr_ratio"));
}

TEST_CASE("no weight decay on norms and biases, by name and by shape", "[trainer][optimizer]") {
  CHECK(is_no_decay("model.layers.0.input_layernorm.weight", torch::zeros({8})));
  CHECK(is_no_decay("model.norm.weight", torch::zeros({8})));
  CHECK(is_no_decay("model.layers.0.self_attn.q_proj.bias", torch::zeros({8})));
  CHECK(is_no_decay("some.scale", torch::zeros({8})));                  // 1-D by shape
  CHECK(is_no_decay("model.layers.0.q_norm.weight", torch::zeros({2, 4})));  // name says norm
  CHECK(is_no_decay("head.Bias", torch::zeros({2, 4})));                // name ends in .bias (any case)
  CHECK_FALSE(is_no_decay("model.embed_tokens.weight", torch::zeros({10, 8})));
  CHECK_FALSE(is_no_decay("model.layers.0.mlp.down_proj.weight", torch::zeros({8, 16})));
  CHECK_FALSE(is_no_decay("lm_head.weight", torch::zeros({10, 8})));

  NamedParams ps = {{"embed.weight", torch::zeros({10, 8}).requires_grad_(true)},
                    {"ln.weight", torch::zeros({8}).requires_grad_(true)},
                    {"proj.weight", torch::zeros({8, 8}).requires_grad_(true)},
                    {"proj.bias", torch::zeros({8}).requires_grad_(true)},
                    {"frozen.weight", torch::zeros({8, 8})}};  // no grad: dropped
  auto g = split_param_groups(ps);
  REQUIRE(g.decay.size() == 2);
  REQUIRE(g.no_decay.size() == 2);
  CHECK(g.decay[0].first == "embed.weight");
  CHECK(g.decay[1].first == "proj.weight");
  CHECK(g.no_decay[0].first == "ln.weight");
  CHECK(g.no_decay[1].first == "proj.bias");
}

TEST_CASE("AdamW groups: decoupled decay only on the decay group, and one step by hand", "[trainer][optimizer]") {
  OptimConfig o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  auto w = torch::ones({2, 2}).requires_grad_(true);
  auto b = torch::ones({2}).requires_grad_(true);
  auto opt = make_adamw(o, {{"w", w}, {"b", b}});
  REQUIRE(opt->param_groups().size() == 2);
  CHECK(static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[0].options()).weight_decay() == 0.5);
  CHECK(static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[1].options()).weight_decay() == 0.0);
  // Zero gradients: the Adam update is 0 / (0 + eps) = 0, so only the decay acts: w *= 1 - lr * wd = 0.95.
  w.mutable_grad() = torch::zeros({2, 2});
  b.mutable_grad() = torch::zeros({2});
  opt->step();
  CHECK(torch::allclose(w, torch::full({2, 2}, 0.95f)));
  CHECK(torch::equal(b.detach(), torch::ones({2})));

  // One Adam step, wd 0: g = 0.5; m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025; bias-corrected m^ = 0.5,
  // v^ = 0.25; update = lr * m^ / (sqrt(v^) + eps) = 0.1 * 0.5 / (0.5 + 1e-8) ~= 0.1 -> p = 1 - 0.1 = 0.9
  o.weight_decay = 0;
  auto p = torch::ones({3, 3}).requires_grad_(true);
  auto opt2 = make_adamw(o, {{"p", p}});
  p.mutable_grad() = torch::full({3, 3}, 0.5f);
  opt2->step();
  CHECK(torch::allclose(p, torch::full({3, 3}, 0.9f), 0, 1e-6));
  set_lr(*opt2, 0.01);
  CHECK(opt2->param_groups()[0].options().get_lr() == 0.01);
}

TEST_CASE("global-norm clipping returns the pre-clip norm and flags non-finite grads", "[trainer][optimizer]") {
  auto a = torch::zeros({2}).requires_grad_(true);
  auto b = torch::zeros({1}).requires_grad_(true);
  auto c = torch::zeros({1}).requires_grad_(true);  // no grad: skipped
  auto set = [&] {
    a.mutable_grad() = torch::tensor({3.f, 4.f});
    b.mutable_grad() = torch::tensor({12.f});
  };
  set();
  // norm = sqrt(9 + 16 + 144) = 13; max 6.5 -> coef 6.5 / (13 + 1e-6) ~= 0.5 -> [1.5, 2], [6]
  auto r = clip_grad_norm({a, b, c}, 6.5);
  CHECK(r.finite);
  CHECK(r.norm == Approx(13.0));
  CHECK(torch::allclose(a.grad(), torch::tensor({1.5f, 2.f}), 1e-5));
  CHECK(torch::allclose(b.grad(), torch::tensor({6.f}), 1e-5));
  set();
  CHECK(clip_grad_norm({a, b}, 100).norm == Approx(13.0));  // below max: untouched
  CHECK(torch::equal(a.grad(), torch::tensor({3.f, 4.f})));
  CHECK(clip_grad_norm({a, b}, 0).norm == Approx(13.0));  // 0 = measure only
  b.mutable_grad() = torch::tensor({std::numeric_limits<float>::quiet_NaN()});
  auto bad = clip_grad_norm({a, b}, 1.0);
  CHECK_FALSE(bad.finite);
  CHECK(std::isnan(bad.norm));
  CHECK(torch::equal(a.grad(), torch::tensor({3.f, 4.f})));  // untouched
  b.mutable_grad() = torch::tensor({std::numeric_limits<float>::infinity()});
  CHECK_FALSE(clip_grad_norm({a, b}, 1.0).finite);
}

namespace {

// A tiny "model": a matrix, a norm-like vector and a bias; loss = sum((x W + bias) * norm)^2 / n on fixed data.
NamedParams make_params(int seed) {
  torch::manual_seed(seed);
  return {{"layer.weight", torch::randn({4, 3}).requires_grad_(true)},
          {"layer.norm.weight", torch::ones({3}).requires_grad_(true)},
          {"layer.bias", torch::zeros({3}).requires_grad_(true)}};
}

void backward_at(const NamedParams& ps, int64_t step) {
  torch::manual_seed(100 + step);
  auto x = torch::randn({5, 4});
  auto y = (torch::matmul(x, ps[0].second) + ps[2].second) * ps[1].second;  // [5, 3]
  (y.square().mean() + 0.1 * y.sum()).backward();
}

// Plain recursion rather than std::filesystem::remove_all, so that this test does not depend on the link-order
// fix checked by the "remove_all" test below.
void remove_tree(const std::filesystem::path& p) {
  std::error_code ec;
  if (std::filesystem::is_directory(std::filesystem::symlink_status(p, ec)))
    for (const auto& e : std::filesystem::directory_iterator(p)) remove_tree(e.path());
  std::filesystem::remove(p, ec);
}

NamedParams clone_params(const NamedParams& ps) {
  NamedParams out;
  for (const auto& [n, p] : ps) out.emplace_back(n, p.detach().clone().requires_grad_(true));
  return out;
}

}  // namespace

TEST_CASE("TrainOptimizer: skip on non-finite grads, and save/load resumes bit-exactly", "[trainer][optimizer]") {
  OptimConfig o;
  o.lr = 1e-2;
  o.weight_decay = 0.1;
  o.schedule = "cosine";
  o.warmup_steps = 2;
  o.min_lr_ratio = 0.1;
  o.max_grad_norm = 0.5;
  const int64_t total = 8;
  const auto dir = (std::filesystem::temp_directory_path() / "rlvr_test_optimizer").string();
  remove_tree(dir);

  NamedParams ps = make_params(1);
  TrainOptimizer opt(o, ps, total);
  for (int64_t s = 0; s < 3; ++s) {
    opt.zero_grad();
    backward_at(ps, s);
    auto r = opt.step();
    CHECK_FALSE(r.skipped);
    CHECK(r.lr == Approx(lr_at(o, s, total)));
  }
  CHECK(opt.step_count() == 3);

  // A NaN gradient: no update, no schedule advance, grads cleared.
  auto before = ps[0].second.detach().clone();
  opt.zero_grad();
  backward_at(ps, 3);
  ps[0].second.mutable_grad()[0][0] = std::numeric_limits<float>::quiet_NaN();
  auto skipped = opt.step();
  CHECK(skipped.skipped);
  CHECK(std::isnan(skipped.grad_norm));
  CHECK(opt.step_count() == 3);
  CHECK(torch::equal(ps[0].second.detach(), before));
  CHECK_FALSE(ps[0].second.grad().defined());

  // Save at step 3 with a snapshot of the weights, then run 3 more steps.
  opt.save(dir);
  NamedParams snapshot = clone_params(ps);
  for (int64_t s = 3; s < 6; ++s) {
    opt.zero_grad();
    backward_at(ps, s);
    opt.step();
  }

  // Resume: fresh parameters with the snapshot's values, a fresh optimizer, load, the same 3 steps.
  NamedParams resumed = clone_params(snapshot);
  TrainOptimizer opt2(o, resumed, total);
  opt2.load(dir);
  CHECK(opt2.step_count() == 3);
  CHECK(opt2.current_lr() == lr_at(o, 3, total));
  for (int64_t s = 3; s < 6; ++s) {
    opt2.zero_grad();
    backward_at(resumed, s);
    opt2.step();
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO(ps[i].first);
    CHECK(torch::equal(ps[i].second.detach(), resumed[i].second.detach()));  // bit-exact
  }
  CHECK(opt2.step_count() == 6);

  // Without the state, the resumed run differs (the test above is not vacuous).
  NamedParams fresh = clone_params(snapshot);
  TrainOptimizer opt3(o, fresh, total);
  for (int64_t s = 3; s < 6; ++s) {
    opt3.zero_grad();
    backward_at(fresh, s);
    opt3.step();
  }
  CHECK_FALSE(torch::equal(ps[0].second.detach(), fresh[0].second.detach()));

  // Loading into different parameters fails with a message naming the file.
  NamedParams other = {{"layer.weight", torch::randn({4, 5}).requires_grad_(true)}};
  TrainOptimizer opt4(o, other, total);
  CHECK_THROWS_WITH(opt4.load(dir), Catch::Matchers::Contains("optimizer.pt") &&
                                        Catch::Matchers::Contains("layer.weight[4x5]"));
  CHECK_THROWS_WITH(opt4.load(dir + "/nope"), Catch::Matchers::Contains("not found"));
  remove_tree(dir);
}

TEST_CASE("std::filesystem::remove_all works in a LibTorch binary (libstdc++ bound first)", "[trainer][optimizer]") {
  // libtorch.so 2.11 exports its own std::filesystem::remove_all, which segfaults when the dynamic linker binds
  // it; cmake/RlvrTorch.cmake records libstdc++ first in DT_NEEDED. If this test crashes, that fix is gone.
  const auto dir = std::filesystem::temp_directory_path() / "rlvr_test_remove_all";
  std::filesystem::create_directories(dir / "a" / "b");
  save_optimizer(*make_adamw(OptimConfig{}, {{"w", torch::zeros({2, 2}).requires_grad_(true)}}),
                 {{"w", torch::zeros({2, 2}).requires_grad_(true)}}, 0, (dir / "a").string());
  CHECK(std::filesystem::remove_all(dir) >= 3);
  CHECK_FALSE(std::filesystem::exists(dir));
  CHECK(std::filesystem::remove_all(dir) == 0);
}
