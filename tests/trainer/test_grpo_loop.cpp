// The GRPO and SFT loops end to end on the built-in model and task (CPU, seconds): resume reproduces the
// uninterrupted run, micro-batching does not change the update, checkpoints are HF directories.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "data/dataset.h"
#include "data/tasks.h"
#include "model/causal_lm.h"
#include "trainer/config.h"
#include "trainer/evaluate.h"
#include "trainer/grpo.h"
#include "trainer/policy.h"
#include "trainer/sft.h"

using namespace rlvr;
namespace fs = std::filesystem;

namespace {

const char* kTiny = R"(
run: {seed: 7, device: cpu, threads: 1}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 200, task_eval_size: 8}
rollout: {group_size: 4, max_new_tokens: 16, temperature: 1.0, max_batch_seqs: 64}
rewards:
  - {name: math_accuracy, weight: 1.0}
  - {name: format, weight: 0.5, args: {style: boxed}}
  # A fresh model is never right, so accuracy and format rewards are all 0 and every advantage would be 0 (no
  # update to compare). A length penalty over the whole budget (-length/16) varies between random completions
  # (some sample EOS early): real advantages.
  - {name: soft_overlong, weight: 1.0, args: {max_tokens: 16, cache: 16}}
algorithm: {advantage: grpo, loss_agg: token-mean, clip_high: 0.28}
optim: {lr: 1.0e-3}
train: {steps: 4, prompts_per_step: 4, micro_batch_size: 16, keep_last: 5}
logging: {console_every: 100}
)";

Config tiny(const fs::path& out, std::vector<std::string> ov = {}) {
  ov.push_back("run.output_dir=" + out.string());
  return parse_config(kTiny, "test.yaml", ov);
}

fs::path fresh(const std::string& name) {
  auto d = fs::temp_directory_path() / ("rlvr_loop_" + name);
  fs::remove_all(d);
  return d;
}

// metrics.jsonl without the wall-clock keys.
std::vector<nlohmann::json> metrics_of(const fs::path& run) {
  std::vector<nlohmann::json> out;
  for_each_line(run / "metrics.jsonl", [&](std::string_view line, size_t) {
    auto j = nlohmann::json::parse(line);
    for (auto it = j.begin(); it != j.end();) {
      const auto& k = it.key();
      if (k.rfind("time/", 0) == 0 || k == "tokens_per_s") it = j.erase(it);
      else ++it;
    }
    out.push_back(j);
  });
  return out;
}

double max_param_diff(const std::shared_ptr<model::CausalLM>& ma, const std::shared_ptr<model::CausalLM>& mb) {
  auto pa = ma->named_parameters(), pb = mb->named_parameters();
  REQUIRE(pa.size() == pb.size());
  double d = 0;
  for (size_t i = 0; i < pa.size(); ++i) d = std::max(d, (pa[i].second - pb[i].second).abs().max().item<double>());
  return d;
}

double max_param_diff(const fs::path& a, const fs::path& b) {
  return max_param_diff(model::CausalLM::from_pretrained(a, at::kCPU), model::CausalLM::from_pretrained(b, at::kCPU));
}

// How far a checkpoint moved from the fresh seeded model it started from: these tests compare updates, so the
// update must not be zero.
double moved_from_init(const fs::path& ckpt, const Config& cfg) {
  auto init = model::CausalLM::from_args(trainer::builtin_model_args("tiny"), cfg.run.seed, at::kCPU);
  return max_param_diff(init, model::CausalLM::from_pretrained(ckpt, at::kCPU));
}

}  // namespace

TEST_CASE("eval options: every training command's evaluation samples with the rollout settings", "[trainer][loop]") {
  auto c = parse_config("", "x.yaml",
                        {"rollout.temperature=0.7", "rollout.top_p=0.9", "rollout.top_k=5", "rollout.min_p=0.05",
                         "rollout.stop=[\"###\"]", "rollout.max_new_tokens=48", "rollout.max_batch_seqs=12"});
  auto eo = trainer::eval_options_from_config(c, 4);
  CHECK(eo.samples == 4);
  CHECK(eo.sampling.temperature == 0.7);
  CHECK(eo.sampling.top_p == 0.9);
  CHECK(eo.sampling.top_k == 5);
  CHECK(eo.sampling.min_p == 0.05);
  CHECK(eo.sampling.stop == std::vector<std::string>{"###"});
  CHECK(eo.sampling.max_new_tokens == 48);
  CHECK(eo.max_batch_seqs == 12);
  auto greedy = trainer::eval_options_from_config(c, 1);
  CHECK(greedy.sampling.temperature == 0.0);
  CHECK(greedy.sampling.stop == std::vector<std::string>{"###"});  // SFT's and the quickstart's used to drop them
  auto sp = trainer::sampling_from_config(c);
  CHECK(sp.top_k == 5);
  CHECK(sp.temperature == 0.7);
}

TEST_CASE("grpo: a resumed run reproduces the uninterrupted run", "[trainer][loop]") {
  auto full = fresh("full"), part = fresh("part");
  auto r1 = trainer::run_grpo(tiny(full));
  CHECK(r1.steps_done == 4);
  trainer::run_grpo(tiny(part, {"train.steps=2"}));
  auto r2 = trainer::run_grpo(tiny(part), "latest");
  CHECK(r2.steps_done == 4);
  auto a = metrics_of(full), b = metrics_of(part);
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1 << "\nfull:    " << a[i].dump() << "\nresumed: " << b[i].dump());
    CHECK(a[i] == b[i]);
  }
  CHECK(max_param_diff(full / "checkpoints" / "step_4", part / "checkpoints" / "step_4") == 0.0);
  CHECK(moved_from_init(full / "checkpoints" / "step_4", tiny(full)) > 1e-4);
}

TEST_CASE("grpo: the update does not depend on the micro-batch size", "[trainer][loop]") {
  // 16 completions per step as 1, 2 or 4 micro-batches (and 6 uneven ones), for every aggregation mode.
  // Adam's first step is lr * g / (|g| + eps): near g = 0 its sensitivity to g is lr / eps, so with the default
  // eps 1e-8 a gradient element that differs by fp32 rounding (~1e-11) would move its weight by ~1e-6 whatever
  // the loss does. eps = 1e-6 keeps this a test of the loss normalisation over micro-batches.
  for (const char* agg : {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"}) {
    auto base = fresh(std::string("mb16_") + agg);
    const std::vector<std::string> common{"train.steps=1", "optim.eps=1e-6", std::string("algorithm.loss_agg=") + agg};
    auto with = [&](std::vector<std::string> v, const std::string& mb) {
      v.push_back("train.micro_batch_size=" + mb);
      return v;
    };
    trainer::run_grpo(tiny(base, with(common, "16")));
    CHECK(moved_from_init(base / "checkpoints" / "step_1", tiny(base)) > 1e-4);  // lr 1e-3: Adam moves ~1e-3
    for (const char* mb : {"8", "4", "3"}) {
      auto d = fresh(std::string("mb") + mb + "_" + agg);
      trainer::run_grpo(tiny(d, with(common, mb)));
      INFO(agg << ", micro_batch_size " << mb);
      CHECK(max_param_diff(base / "checkpoints" / "step_1", d / "checkpoints" / "step_1") < 1e-6);
    }
    // Token-budget micro-batches (rows sorted by length, regrouped): the same update. Rows are 10-13 prompt +
    // 1-16 response tokens, so a 64-token budget packs 2-6 rows and 1 token puts every row alone.
    for (const char* budget : {"64", "1"}) {
      auto d = fresh(std::string("tok") + budget + "_" + agg);
      trainer::run_grpo(tiny(d, with({"train.steps=1", "optim.eps=1e-6", std::string("algorithm.loss_agg=") + agg,
                                      std::string("train.max_tokens_per_micro_batch=") + budget},
                                     "16")));
      INFO(agg << ", max_tokens_per_micro_batch " << budget);
      CHECK(max_param_diff(base / "checkpoints" / "step_1", d / "checkpoints" / "step_1") < 1e-6);
      auto m = metrics_of(d);
      REQUIRE(m.size() == 1);
      auto b = metrics_of(base);
      // Sorting by length cuts the padding of the 16-row micro-batch; one row each has none.
      CHECK(m[0]["update/padding_ratio"].get<double>() < b[0]["update/padding_ratio"].get<double>());
      if (std::string(budget) == "1") CHECK(m[0]["update/padding_ratio"].get<double>() == 0.0);
    }
  }
}

TEST_CASE("grpo: shared-prompt packing (train.share_prompt) gives the same update with fewer tokens", "[trainer][loop]") {
  // 4 prompts x G 4: a prompt's completions behind one copy of it. With KL (the reference forward packs the same
  // way), 2 PPO epochs and 2 mini-batches, and micro-batches of 16 (whole groups) or 3 (groups cut in two).
  for (const char* agg : {"token-mean", "seq-mean-token-sum-norm"}) {
    const std::vector<std::string> common{"train.steps=1", "optim.eps=1e-6", std::string("algorithm.loss_agg=") + agg,
                                          "algorithm.kl_coef=0.05", "algorithm.ppo_epochs=2", "train.mini_batches=2"};
    auto base = fresh(std::string("share_off_") + agg);
    trainer::run_grpo(tiny(base, common));
    CHECK(moved_from_init(base / "checkpoints" / "step_1", tiny(base)) > 1e-4);
    for (const char* mb : {"16", "3"}) {
      auto d = fresh(std::string("share_on_") + mb + "_" + agg);
      auto ov = common;
      ov.push_back("train.share_prompt=true");
      ov.push_back(std::string("train.micro_batch_size=") + mb);
      trainer::run_grpo(tiny(d, ov));
      INFO(agg << ", micro_batch_size " << mb);
      // 4 Adam steps (2 epochs x 2 mini-batches), not the 1 of the micro-batch test above: the 1e-6 of one step
      // (fp32 rounding: the masked attention kernel sums over other key blocks) compounds over the steps (measured
      // 1.4e-6 at most), so 5e-6. A wrong mask changes log-probs by > 1e-4 (test_response_logprobs.cpp).
      CHECK(max_param_diff(base / "checkpoints" / "step_1", d / "checkpoints" / "step_1") < 5e-6);
      auto m = metrics_of(d), b = metrics_of(base);
      REQUIRE(m.size() == 1);
      CHECK(m[0]["loss/kl_mean"].get<double>() == Approx(b[0]["loss/kl_mean"].get<double>()).margin(1e-6));
      CHECK(m[0]["loss/kl_mean"].get<double>() != 0.0);  // after the first mini-batch the policy has moved
      // Each prompt runs once per micro-batch instead of once per completion: the 16 prompt copies (10-13 tokens
      // each) of a pass become 4 (2 mini-batches of 2 groups, micro-batches of 16) or 8 (micro-batches of 3).
      CHECK(m[0]["update/tokens"].get<double>() <= b[0]["update/tokens"].get<double>() - 8 * 10);
    }
  }
  // A token budget plans by sorted lengths, which would cut groups apart: refused, naming both keys.
  auto d = fresh("share_budget");
  CHECK_THROWS_WITH(tiny(d, {"train.share_prompt=true", "train.max_tokens_per_micro_batch=64"}),
                    Catch::Contains("train.share_prompt") && Catch::Contains("train.max_tokens_per_micro_batch"));
}

TEST_CASE("grpo: completions with zero advantage left out of the update (train.skip_zero_advantage) change nothing",
          "[trainer][loop]") {
  // A group whose completions all earn the same reward (here: all at the 16-token budget, the same length penalty)
  // has advantage 0: its tokens add 0 to the loss and its gradient and count in the normaliser only. 4 Adam steps
  // (2 epochs x 2 mini-batches) on one rollout, micro-batches of 3: as in the shared-prompt test, 5e-6.
  for (const char* agg : {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"}) {
    const std::vector<std::string> common{"train.steps=1", "optim.eps=1e-6", std::string("algorithm.loss_agg=") + agg,
                                          "algorithm.ppo_epochs=2", "train.mini_batches=2", "train.micro_batch_size=3"};
    auto off = fresh(std::string("skip_off_") + agg), on = fresh(std::string("skip_on_") + agg);
    auto ov = common;
    ov.push_back("train.skip_zero_advantage=false");
    trainer::run_grpo(tiny(off, ov));
    trainer::run_grpo(tiny(on, common));
    INFO(agg);
    CHECK(moved_from_init(off / "checkpoints" / "step_1", tiny(off)) > 1e-4);
    CHECK(max_param_diff(off / "checkpoints" / "step_1", on / "checkpoints" / "step_1") < 5e-6);
    auto a = metrics_of(off), b = metrics_of(on);
    REQUIRE(a.size() == 1);
    REQUIRE(b.size() == 1);
    CHECK(a[0]["update/skipped_frac"].get<double>() == 0.0);
    CHECK(b[0]["update/skipped_frac"].get<double>() > 0.0);  // some groups did have equal rewards
    CHECK(b[0]["update/tokens"].get<double>() < a[0]["update/tokens"].get<double>());
    for (const char* k : {"loss/pg_loss", "loss/clip_frac_high", "loss/clip_frac_low", "grad_norm"})
      CHECK(b[0][k].get<double>() == Approx(a[0][k].get<double>()).margin(1e-6));
    CHECK(b[0]["loss/ratio_mean"].get<double>() == Approx(1.0).margin(0.05));  // a mean over the rows that ran
  }
  // Every advantage 0 (accuracy and format only, which a fresh model never earns): one row per mini-batch still
  // runs, and the optimizer steps are those of zero gradients either way (Adam: nothing moves).
  auto off = fresh("skip_all_off"), on = fresh("skip_all_on");
  trainer::run_grpo(tiny(off, {"train.steps=1", "rewards.soft_overlong.weight=0", "train.skip_zero_advantage=false"}));
  trainer::run_grpo(tiny(on, {"train.steps=1", "rewards.soft_overlong.weight=0"}));
  CHECK(max_param_diff(off / "checkpoints" / "step_1", on / "checkpoints" / "step_1") == 0.0);
  CHECK(metrics_of(on)[0]["update/skipped_frac"].get<double>() == Approx(15.0 / 16));
  // A KL term in the loss is not 0 at advantage 0: nothing is left out.
  auto kl = fresh("skip_kl");
  trainer::run_grpo(tiny(kl, {"train.steps=1", "algorithm.kl_coef=0.05"}));
  CHECK(metrics_of(kl)[0]["update/skipped_frac"].get<double>() == 0.0);
}

TEST_CASE("grpo: every aggregation and advantage variant runs and logs the metrics peers name", "[trainer][loop]") {
  for (const char* agg : {"seq-mean-token-mean", "seq-mean-token-sum-norm"}) {
    auto d = fresh(std::string("agg_") + agg);
    auto r = trainer::run_grpo(tiny(d, {"train.steps=1", std::string("algorithm.loss_agg=") + agg,
                                        "algorithm.advantage=rloo", "algorithm.kl_coef=0.01",
                                        "algorithm.entropy_coef=0.001", "algorithm.ppo_epochs=2",
                                        "train.mini_batches=2"}));
    for (const char* k : {"reward/mean", "reward/std", "reward/math_accuracy/mean", "reward/format/mean", "accuracy",
                          "frac_reward_zero_std", "completion_length/mean", "completion_length/max", "truncated_ratio",
                          "loss/clip_frac_low", "loss/clip_frac_high", "loss/kl_mean", "loss/entropy_mean", "grad_norm",
                          "lr", "tokens_per_s", "time/generate", "time/update"}) {
      INFO(agg << ": " << k);
      CHECK(r.last_metrics.count(k) == 1);
    }
  }
}

TEST_CASE("grpo: dynamic sampling keeps only groups with mixed accuracy", "[trainer][loop]") {
  auto d = fresh("dyn");
  auto r = trainer::run_grpo(tiny(d, {"train.steps=1", "algorithm.dynamic_sampling=true", "algorithm.max_gen_batches=2"}));
  // A fresh model is never right, so every group is all-0 and dropped: nothing to train on, two rounds.
  CHECK(r.last_metrics.at("dynamic_sampling/gen_rounds") == 2);
  CHECK(r.last_metrics.at("dynamic_sampling/groups_dropped") == r.last_metrics.at("dynamic_sampling/groups_generated"));
  CHECK(r.last_metrics.at("completions") == 0);
}

TEST_CASE("grpo: prompt selection skips prompts before generating, and a resumed run takes the same decisions",
          "[trainer][loop]") {
  // 8 training prompts, 4 per step: each comes back every 2 steps. A fresh model is never right, so every group
  // is all wrong; from step 3 on every prompt has a streak and is kept with probability 0.5^streak (the
  // length penalty still gives an update to compare).
  const std::vector<std::string> sel{"data.task_train_size=8", "data.selection=skip_zero_variance",
                                     "data.selection_explore=0.5"};
  auto with = [&](std::vector<std::string> v) {
    v.insert(v.end(), sel.begin(), sel.end());
    return v;
  };
  auto full = fresh("sel_full"), part = fresh("sel_part");
  trainer::run_grpo(tiny(full, with({})));
  trainer::run_grpo(tiny(part, with({"train.steps=2"})));
  CHECK(fs::exists(part / "checkpoints" / "step_2" / "trainer_state" / "prompt_history.json"));
  trainer::run_grpo(tiny(part, with({})), "latest");
  auto a = metrics_of(full), b = metrics_of(part);
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  double cumulative = 0, skipped_late = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("step " << i + 1 << "\nfull:    " << a[i].dump() << "\nresumed: " << b[i].dump());
    CHECK(a[i] == b[i]);
    cumulative += a[i]["tokens_generated"].get<double>();
    CHECK(a[i]["tokens_generated_cumulative"].get<double>() == cumulative);
    CHECK(a[i]["groups_with_signal"].get<double>() == 0);  // never right: no group with mixed accuracy
    CHECK(a[i]["completions"].get<double>() == 16);        // the batch is always full
    const double cand = a[i]["selection/candidates"].get<double>(), skipped = a[i]["selection/skipped"].get<double>(),
                 forced = a[i]["selection/forced"].get<double>();
    CHECK(cand == 4 + skipped + forced);  // examined = kept by draw + skipped + taken back
    if (i < 2) CHECK(skipped == 0);       // the first epoch: every prompt is unseen
    else skipped_late += skipped;
  }
  CHECK(skipped_late > 0);
  CHECK(a[3]["selection/prompts_in_history"].get<double>() == 8);
  CHECK(max_param_diff(full / "checkpoints" / "step_4", part / "checkpoints" / "step_4") == 0.0);
  CHECK(moved_from_init(full / "checkpoints" / "step_4", tiny(full)) > 1e-4);
  // The policy 'all' trains on the plain stream: nothing skipped, and the run differs from the selective one.
  auto plain = fresh("sel_all");
  trainer::run_grpo(tiny(plain, {"data.task_train_size=8"}));
  CHECK(metrics_of(plain)[3].count("selection/skipped") == 0);
  CHECK(max_param_diff(full / "checkpoints" / "step_4", plain / "checkpoints" / "step_4") > 0.0);
}

TEST_CASE("sft: checkpoints are HF directories with trainer state, and the loss falls", "[trainer][loop]") {
  auto d = fresh("sft");
  auto r = trainer::run_sft(tiny(d, {"train.steps=30", "optim.lr=3e-3", "train.prompts_per_step=32", "train.micro_batch_size=32"}));
  auto ck = d / "checkpoints" / "step_30";
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                        "tokenizer_config.json", "trainer_state/state.json", "trainer_state/optimizer.pt",
                        "trainer_state/config.yaml"})
    CHECK(fs::exists(ck / f));
  auto m = metrics_of(d);
  REQUIRE(m.size() == 30);
  // Byte-level LM from random init: per-token NLL starts near ln(259) = 5.56 and falls fast.
  CHECK(m.front()["loss"].get<double>() > 4.5);
  CHECK(m.back()["loss"].get<double>() < 2.5);
}

TEST_CASE("train.stop_at_accuracy: SFT and GRPO stop, with a checkpoint, at the first eval that reaches it",
          "[trainer][loop]") {
  // Four problems that are both the training and the eval set: SFT memorises them, so held-out accuracy climbs
  // from 0 to 1 within the step cap and crosses 0.5 at some eval in between.
  auto d = fresh("stop_at");
  fs::create_directories(d);
  const auto problems = d / "four.jsonl";
  std::string text;
  for (const auto& r : data::generate_task("arithmetic", 1, 4, 3, data::Split::train)) text += data::to_json(r).dump() + "\n";
  write_file_atomic(problems, text);
  const std::string train_ov = "data.train=" + problems.string(), eval_ov = "data.eval=" + problems.string();
  std::vector<std::string> sft_ov = {train_ov, eval_ov, "train.steps=300", "optim.lr=3e-3", "optim.warmup_steps=10",
                                     "train.prompts_per_step=4", "train.micro_batch_size=4", "train.eval_every=10",
                                     "rollout.max_new_tokens=32", "run.seed=3"};
  sft_ov.push_back("train.stop_at_accuracy=0.5");
  auto r = trainer::run_sft(tiny(d / "sft", sft_ov));
  REQUIRE(r.reached_accuracy);
  CHECK(r.steps_done < 300);
  CHECK(r.steps_done % 10 == 0);
  CHECK(r.last_eval.at("eval/mean@1") >= 0.5);
  CHECK(r.last_checkpoint == (d / "sft" / "checkpoints" / ("step_" + std::to_string(r.steps_done))).string());
  CHECK(fs::exists(fs::path(r.last_checkpoint) / "model.safetensors"));
  // It stopped at the FIRST eval at or above 0.5: every earlier eval was below.
  auto m = metrics_of(d / "sft");
  REQUIRE(static_cast<int64_t>(m.size()) == r.steps_done);
  int evals = 0;
  for (const auto& j : m) {
    if (!j.contains("eval/mean@1")) continue;
    ++evals;
    if (j["step"].get<int64_t>() < r.steps_done) CHECK(j["eval/mean@1"].get<double>() < 0.5);
  }
  CHECK(evals == r.steps_done / 10);
  // GRPO from that checkpoint: its accuracy is already >= 0.5, so the run stops at its first periodic eval (step
  // 2), not at the step-0 eval and not at train.steps.
  auto g = trainer::run_grpo(tiny(d / "grpo", {train_ov, eval_ov, "model.path=" + r.last_checkpoint, "train.steps=6",
                                               "train.eval_every=2", "rollout.max_new_tokens=32", "run.seed=3",
                                               "train.stop_at_accuracy=0.5", "optim.lr=1e-6"}));
  CHECK(g.reached_accuracy);
  CHECK(g.steps_done == 2);
  CHECK(fs::exists(d / "grpo" / "checkpoints" / "step_2" / "model.safetensors"));
  // Off (0), the same GRPO run goes to train.steps.
  auto full = trainer::run_grpo(tiny(d / "grpo_full", {train_ov, eval_ov, "model.path=" + r.last_checkpoint, "train.steps=6",
                                                       "train.eval_every=2", "rollout.max_new_tokens=32", "run.seed=3",
                                                       "optim.lr=1e-6"}));
  CHECK_FALSE(full.reached_accuracy);
  CHECK(full.steps_done == 6);
}

TEST_CASE("eval_reached_accuracy reads eval/mean@<samples> and is off at 0", "[trainer]") {
  std::map<std::string, double> ev = {{"eval/mean@1", 0.5}, {"eval/mean@4", 0.25}};
  CHECK(trainer::eval_reached_accuracy(ev, 0.5, 1));
  CHECK_FALSE(trainer::eval_reached_accuracy(ev, 0.51, 1));
  CHECK_FALSE(trainer::eval_reached_accuracy(ev, 0.5, 4));
  CHECK(trainer::eval_reached_accuracy(ev, 0.25, 4));
  CHECK_FALSE(trainer::eval_reached_accuracy(ev, 0.0, 1));   // 0 = off
  CHECK_FALSE(trainer::eval_reached_accuracy({}, 0.5, 1));   // no eval this step
  CHECK_FALSE(trainer::eval_reached_accuracy(ev, 0.1, 8));   // another k: not this metric
}
