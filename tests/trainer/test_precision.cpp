// Mixed precision: bf16 working weights with fp32 master weights, moments and gradient accumulation.
// One step at a GPU recipe's learning rate (1e-6) must move the weights that learn (the fp32 masters) and equal an
// fp32 run's step; a pure-bf16 in-place AdamW (the behaviour without masters) must be shown not to. The GRPO loop in
// bf16 must resume exactly and not depend on the micro-batch size beyond what bf16 gradients allow.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"
#include "model/causal_lm.h"
#include "trainer/config.h"
#include "trainer/grpo.h"
#include "trainer/optimizer.h"
#include "trainer/policy.h"

using namespace rlvr;
using namespace rlvr::trainer;
namespace fs = std::filesystem;

namespace {

// A model-like set of parameters: a matrix N(0, 0.02) (the HF initializer_range), a bias, a norm weight of ones.
// Values are bf16-representable, so bf16 and fp32 copies hold exactly the same numbers.
NamedParams bf16_like_params(at::ScalarType dtype) {
  torch::manual_seed(3);
  auto w = (torch::randn({64, 128}) * 0.02).to(torch::kBFloat16);
  auto b = (torch::randn({128}) * 0.02).to(torch::kBFloat16);
  auto n = torch::ones({128}, torch::kBFloat16);
  NamedParams ps = {{"layer.weight", w}, {"layer.bias", b}, {"norm.weight", n}};
  for (auto& [name, p] : ps) p = p.to(dtype).requires_grad_(true);
  return ps;
}

// loss = sum_i <p_i, c_i> with c_i bf16-representable, so dloss/dp_i = c_i exactly in bf16 and in fp32.
void backward_linear(const NamedParams& ps, int seed) {
  torch::manual_seed(100 + seed);
  torch::Tensor loss;
  for (const auto& [name, p] : ps) {
    auto c = (torch::randn(p.sizes()) * 1e-3).to(torch::kBFloat16).to(p.scalar_type());
    auto t = (p * c).sum();
    loss = loss.defined() ? loss + t : t;
  }
  loss.backward();
}

OptimConfig lr_1e6() {
  OptimConfig o;
  o.lr = 1e-6;  // every GPU recipe's range (1e-6 .. 5e-6)
  o.weight_decay = 0.1;
  return o;
}

double changed_fraction(const std::vector<torch::Tensor>& now, const std::vector<torch::Tensor>& before) {
  double changed = 0, total = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    changed += now[i].detach().ne(before[i]).sum().item<double>();
    total += static_cast<double>(now[i].numel());
  }
  return changed / total;
}

std::vector<torch::Tensor> snapshot(const std::vector<torch::Tensor>& ts) {
  std::vector<torch::Tensor> out;
  for (const auto& t : ts) out.push_back(t.detach().to(torch::kFloat).clone());
  return out;
}

std::vector<torch::Tensor> tensors_of(const NamedParams& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& np : ps) out.push_back(np.second);
  return out;
}

}  // namespace

TEST_CASE("bf16 weights with fp32 masters: one step at lr 1e-6 moves the masters like an fp32 run", "[trainer][precision]") {
  NamedParams ps = bf16_like_params(torch::kBFloat16);
  TrainOptimizer opt(lr_1e6(), ps, 1);
  REQUIRE(opt.has_masters());
  const auto masters0 = snapshot(opt.master_weights());
  const auto working0 = snapshot(tensors_of(ps));
  opt.zero_grad();
  backward_linear(ps, 0);
  for (const auto& [name, p] : ps) CHECK_FALSE(p.grad().defined());  // moved into the fp32 buffers by the hook
  for (const auto& m : opt.grad_tensors()) CHECK(m.grad().scalar_type() == torch::kFloat);
  auto r = opt.step();
  CHECK_FALSE(r.skipped);
  const double moved = changed_fraction(opt.master_weights(), masters0);
  INFO("fp32 masters changed: " << moved);
  CHECK(moved >= 0.95);

  // The same step in fp32 from the same values and gradients: the masters are that run's parameters.
  NamedParams ref = bf16_like_params(torch::kFloat);
  TrainOptimizer ref_opt(lr_1e6(), ref, 1);
  CHECK_FALSE(ref_opt.has_masters());
  ref_opt.zero_grad();
  backward_linear(ref, 0);
  ref_opt.step();
  const auto masters = opt.master_weights();
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO(ps[i].first);
    auto a = masters[i].detach(), b = ref[i].second.detach();
    CHECK(((a - b).abs() / b.abs().clamp_min(1e-30)).max().item<double>() <= 1e-6);
    CHECK(torch::equal(ps[i].second.detach(), a.to(torch::kBFloat16)));  // working = masters, rounded
  }

  // Without masters (AdamW updating the bf16 parameters in place) the same step moves almost nothing: 1e-6 is
  // below half the bf16 spacing of every |w| above ~2.6e-4 (spacing 2^-8 |w| .. 2^-7 |w|).
  NamedParams pure = bf16_like_params(torch::kBFloat16);
  auto pure_opt = make_adamw(lr_1e6(), pure);
  pure_opt->zero_grad();
  backward_linear(pure, 0);
  pure_opt->step();
  const double pure_moved = changed_fraction(tensors_of(pure), working0);
  INFO("pure bf16 in place changed: " << pure_moved);
  CHECK(pure_moved < 0.05);
}

TEST_CASE("bf16 weights with fp32 masters: many small steps add up in the working weights", "[trainer][precision]") {
  // 300 steps of the same gradient: Adam moves every weight by ~lr per step, 3e-4 in all, more than half the bf16
  // spacing of |w| < 2^-3 (<= 2.4e-4), i.e. of nearly every N(0, 0.02) weight. In place in bf16 each step rounds
  // back, so the weights stay where they were.
  NamedParams ps = bf16_like_params(torch::kBFloat16), pure = bf16_like_params(torch::kBFloat16);
  const auto w0 = snapshot({ps[0].second});
  TrainOptimizer opt(lr_1e6(), ps, 300);
  auto pure_opt = make_adamw(lr_1e6(), pure);
  auto same_grad = [](const NamedParams& p) {
    torch::manual_seed(5);
    auto c = (torch::randn(p[0].second.sizes()) * 1e-3).to(p[0].second.scalar_type());
    (p[0].second * c).sum().backward();
  };
  for (int s = 0; s < 300; ++s) {
    opt.zero_grad();
    same_grad(ps);
    opt.step();
    pure_opt->zero_grad();
    same_grad(pure);
    pure_opt->step();
  }
  const double with_masters = changed_fraction({ps[0].second}, w0), in_place = changed_fraction({pure[0].second}, w0);
  INFO("bf16 weights changed after 300 steps: with masters " << with_masters << ", in place " << in_place);
  CHECK(with_masters >= 0.9);
  CHECK(in_place < 0.05);
}

TEST_CASE("bf16 weights: gradients of micro-batches accumulate in fp32", "[trainer][precision]") {
  // 64 micro-batches of the same small gradient: fp32 accumulation is exact here (64 = 2^6 times a bf16 value),
  // while a bf16 .grad() accumulated in place would lose the low bits once the sum outgrows them.
  NamedParams ps = {{"w", torch::full({1000}, 0.5, torch::kBFloat16).requires_grad_(true)}};
  TrainOptimizer opt(lr_1e6(), ps, 1);
  opt.zero_grad();
  torch::manual_seed(9);
  auto c = (torch::rand({1000}) + 1).to(torch::kBFloat16);  // [1, 2)
  auto small = (c * 1e-3).to(torch::kBFloat16);
  for (int k = 0; k < 64; ++k) (ps[0].second * small).sum().backward();
  auto g = opt.grad_tensors()[0].grad();
  CHECK(torch::equal(g, small.to(torch::kFloat) * 64));
  // The in-place bf16 sum of the same 64 gradients differs from that in most elements (rounding at each add).
  auto acc = torch::zeros({1000}, torch::kBFloat16);
  for (int k = 0; k < 64; ++k) acc.add_(small);
  CHECK(acc.to(torch::kFloat).ne(g).to(torch::kFloat).mean().item<double>() > 0.5);
}

TEST_CASE("bf16 optimizer state: save and load resume bit-exactly and fp32 reads the masters", "[trainer][precision]") {
  const auto dir = (fs::temp_directory_path() / "rlvr_test_precision_state").string();
  fs::remove_all(dir);
  OptimConfig o = lr_1e6();
  o.lr = 1e-4;
  NamedParams ps = bf16_like_params(torch::kBFloat16);
  TrainOptimizer opt(o, ps, 10);
  for (int s = 0; s < 2; ++s) {
    opt.zero_grad();
    backward_linear(ps, s);
    opt.step();
  }
  opt.save(dir);
  auto saved = read_master_weights(dir);
  REQUIRE(saved.size() == 3);
  // Resume: the working weights as a checkpoint holds them (bf16), a fresh optimizer, load, two more steps.
  NamedParams resumed;
  for (const auto& [n, p] : ps) resumed.emplace_back(n, p.detach().clone().requires_grad_(true));
  for (int s = 2; s < 4; ++s) {
    opt.zero_grad();
    backward_linear(ps, s);
    opt.step();
  }
  TrainOptimizer opt2(o, resumed, 10);
  opt2.load(dir);
  CHECK(opt2.step_count() == 2);
  for (int s = 2; s < 4; ++s) {
    opt2.zero_grad();
    backward_linear(resumed, s);
    opt2.step();
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    INFO(ps[i].first);
    CHECK(torch::equal(opt.master_weights()[i], opt2.master_weights()[i]));
    CHECK(torch::equal(ps[i].second, resumed[i].second));
  }
  // Masters that restarted from the rounded weights would differ (the comparison above is not vacuous).
  NamedParams restarted;
  for (const auto& [n, p] : resumed) restarted.emplace_back(n, p.detach().clone().requires_grad_(true));
  TrainOptimizer opt3(o, restarted, 10);
  for (size_t i = 0; i < 3; ++i) {
    auto it = std::find_if(saved.begin(), saved.end(), [&](const auto& s) { return s.first == ps[i].first; });
    REQUIRE(it != saved.end());
    CHECK_FALSE(torch::equal(it->second, restarted[i].second.detach().to(torch::kFloat)));
  }
  // An fp32 run resuming from this checkpoint takes the unrounded masters as its parameters.
  NamedParams f32;
  for (const auto& [n, p] : bf16_like_params(torch::kFloat)) f32.emplace_back(n, p);
  TrainOptimizer opt4(o, f32, 10);
  opt4.load(dir);
  for (const auto& [n, t] : saved) {
    auto it = std::find_if(f32.begin(), f32.end(), [&](const auto& p) { return p.first == n; });
    REQUIRE(it != f32.end());
    CHECK(torch::equal(it->second.detach(), t));
  }
  fs::remove_all(dir);
}

// ---- the GRPO loop with model.dtype bf16 ----

namespace {

const char* kTinyBf16 = R"(
run: {seed: 7, device: cpu, threads: 1}
model: {path: "builtin:tiny", dtype: bf16}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 200, task_eval_size: 8}
rollout: {group_size: 4, max_new_tokens: 16, temperature: 1.0, max_batch_seqs: 64}
rewards:
  - {name: math_accuracy, weight: 1.0}
  # A fresh model is never right: a length penalty over the budget gives real advantages.
  - {name: soft_overlong, weight: 1.0, args: {max_tokens: 16, cache: 16}}
algorithm: {advantage: grpo, loss_agg: token-mean, clip_high: 0.28}
optim: {lr: 1.0e-3, eps: 1.0e-6}
train: {steps: 4, prompts_per_step: 4, micro_batch_size: 16, keep_last: 5}
logging: {console_every: 100}
)";

Config tiny(const fs::path& out, std::vector<std::string> ov = {}) {
  ov.push_back("run.output_dir=" + out.string());
  return parse_config(kTinyBf16, "test.yaml", ov);
}

fs::path fresh(const std::string& name) {
  auto d = fs::temp_directory_path() / ("rlvr_precision_" + name);
  fs::remove_all(d);
  return d;
}

std::map<std::string, torch::Tensor> masters_at(const fs::path& ckpt) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [n, t] : read_master_weights((ckpt / "trainer_state").string())) out[n] = t;
  return out;
}

std::vector<nlohmann::json> metrics_of(const fs::path& run) {
  std::vector<nlohmann::json> out;
  for_each_line(run / "metrics.jsonl", [&](std::string_view line, size_t) {
    auto j = nlohmann::json::parse(line);
    for (auto it = j.begin(); it != j.end();) {
      if (it.key().rfind("time/", 0) == 0 || it.key() == "tokens_per_s") it = j.erase(it);
      else ++it;
    }
    out.push_back(j);
  });
  return out;
}

// The update of the masters from `init` (the bf16 seed model, upcast) to a checkpoint's masters.
std::map<std::string, torch::Tensor> update_of(const fs::path& ckpt, const Config& cfg) {
  auto init = model::CausalLM::from_args(builtin_model_args("tiny"), cfg.run.seed, at::kCPU);
  std::map<std::string, torch::Tensor> out;
  auto m = masters_at(ckpt);
  for (auto& [n, p] : init->named_parameters()) {
    REQUIRE(m.count(n));
    out[n] = m[n] - p.detach().to(torch::kBFloat16).to(torch::kFloat);
  }
  return out;
}

}  // namespace

TEST_CASE("grpo bf16: checkpoints hold bf16 weights and fp32 masters and a resumed run is identical", "[trainer][precision][loop]") {
  auto full = fresh("full"), part = fresh("part");
  run_grpo(tiny(full));
  run_grpo(tiny(part, {"train.steps=2"}));
  run_grpo(tiny(part), "latest");
  auto a = metrics_of(full), b = metrics_of(part);
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1 << "\nfull:    " << a[i].dump() << "\nresumed: " << b[i].dump());
    CHECK(a[i] == b[i]);
  }
  auto ckpt = full / "checkpoints" / "step_4";
  auto wa = model::CausalLM::from_pretrained(ckpt, at::kCPU, at::kBFloat16)->named_parameters();
  auto wb = model::CausalLM::from_pretrained(part / "checkpoints" / "step_4", at::kCPU, at::kBFloat16)->named_parameters();
  auto ma = masters_at(ckpt), mb = masters_at(part / "checkpoints" / "step_4");
  REQUIRE(ma.size() == wa.size());
  for (size_t i = 0; i < wa.size(); ++i) {
    const auto& n = wa[i].first;
    INFO(n);
    CHECK(torch::equal(wa[i].second, wb[i].second));
    CHECK(torch::equal(ma[n], mb[n]));
    CHECK(torch::equal(wa[i].second, ma[n].to(torch::kBFloat16)));  // HF weights = masters, rounded
  }
  const auto config = read_file(ckpt / "config.json");
  CHECK(config.find("\"bfloat16\"") != std::string::npos);
  // The parameters moved (lr 1e-3: Adam moves ~1e-3 per step).
  double moved = 0;
  for (auto& [n, d] : update_of(ckpt, tiny(full))) moved = std::max(moved, d.abs().max().item<double>());
  CHECK(moved > 1e-3);
}

TEST_CASE("grpo bf16: the update does not depend on the micro-batch size beyond bf16 gradient rounding", "[trainer][precision][loop]") {
  // Micro-batches change only how often the bf16 gradient is rounded before the fp32 sum: each per-micro-batch
  // .grad() carries a relative rounding error <= 2^-8, which Adam's first step lr * g / (|g| + eps) passes on as
  // at most lr * 2^-8 / 4 (the derivative eps / (|g| + eps)^2 is largest, 1 / (4 eps), at |g| = eps) -- except where
  // the partial gradients cancel, so that the rounding flips the sign of g and the update changes by up to 2 lr.
  // So: the median element must agree to lr * 2^-10, and the L2 norm of the difference must be a small part of the
  // update's (sign flips need |g| below the rounding of its parts: rare). An fp32 accumulation bug (e.g. one
  // micro-batch's gradient lost, or counted twice) changes g by a factor, and every element's update by ~lr.
  const double lr = 1e-3;
  auto base = fresh("mb16");
  run_grpo(tiny(base, {"train.steps=1"}));
  auto u16 = update_of(base / "checkpoints" / "step_1", tiny(base));
  double norm16 = 0;
  for (auto& [n, d] : u16) norm16 += d.pow(2).sum().item<double>();
  norm16 = std::sqrt(norm16);
  CHECK(norm16 > 0.1);  // ~lr per element over 1.6M elements: the update is not zero
  for (const char* mb : {"8", "3"}) {
    auto d = fresh(std::string("mb") + mb);
    run_grpo(tiny(d, {"train.steps=1", std::string("train.micro_batch_size=") + mb}));
    auto u = update_of(d / "checkpoints" / "step_1", tiny(d));
    double diff2 = 0;
    std::vector<torch::Tensor> all;
    for (auto& [n, x] : u) {
      auto e = (x - u16[n]).abs().reshape({-1});
      diff2 += e.pow(2).sum().item<double>();
      all.push_back(e);
    }
    const double rel = std::sqrt(diff2) / norm16;
    const double median = torch::cat(all).median().item<double>();
    INFO("micro_batch_size " << mb << ": |du| / |u| = " << rel << ", median |du| = " << median);
    CHECK(median <= lr * std::ldexp(1.0, -10));
    CHECK(rel < 0.1);
  }
}

TEST_CASE("grpo: a prompt and response budget above the model's context is a config error", "[trainer][precision]") {
  auto d = fresh("context");
  // builtin:tiny has max_position_embeddings 1024.
  CHECK_THROWS_AS(run_grpo(tiny(d, {"data.max_prompt_tokens=1000", "rollout.max_new_tokens=100"})), ConfigError);
  // A second run into the same directory would be refused by the run-directory policy first: a fresh one.
  auto d2 = fresh("context2");
  CHECK_THROWS_WITH(run_grpo(tiny(d2, {"data.max_prompt_tokens=1000", "rollout.max_new_tokens=100"})),
                    Catch::Matchers::Contains("1000") && Catch::Matchers::Contains("100") &&
                        Catch::Matchers::Contains("max_position_embeddings 1024"));
  CHECK_NOTHROW(check_context_budget(tiny(d, {"data.max_prompt_tokens=1008", "rollout.max_new_tokens=16"}), 1024));
}
