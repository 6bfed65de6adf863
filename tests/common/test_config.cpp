// The typed YAML config: defaults, overrides, and the error messages a user sees.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "trainer/config.h"

using namespace rlvr;

static std::string error_of(const std::string& yaml, const std::vector<std::string>& ov = {}) {
  try {
    parse_config(yaml, "configs/x.yaml", ov);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("config: defaults are valid and round-trip through YAML", "[config]") {
  Config c = parse_config("", "x.yaml");
  CHECK(c.rollout.group_size == 8);
  CHECK(c.algorithm.loss_agg == "token-mean");
  CHECK(c.rewards.size() == 1);
  CHECK(c.rewards[0].name == "math_accuracy");
  Config c2 = parse_config(to_yaml(c), "resolved.yaml");
  CHECK(to_yaml(c2) == to_yaml(c));
}

TEST_CASE("config: values from the file and typed reads", "[config]") {
  Config c = parse_config(
      "run:\n  seed: 7\nrollout:\n  group_size: 16\n  temperature: 0.6\n  stop: ['</answer>']\n"
      "rewards:\n  - name: math_accuracy\n    weight: 1.0\n  - name: format\n    weight: 0.2\n    args: {style: r1}\n",
      "x.yaml");
  CHECK(c.run.seed == 7);
  CHECK(c.rollout.group_size == 16);
  CHECK(c.rollout.temperature == Approx(0.6));
  REQUIRE(c.rollout.stop.size() == 1);
  CHECK(c.rollout.stop[0] == "</answer>");
  REQUIRE(c.rewards.size() == 2);
  CHECK(c.rewards[1].weight == Approx(0.2));
  CHECK(c.rewards[1].args.at("style") == "r1");
}

TEST_CASE("config: unknown key names file, line, key path and the closest key", "[config]") {
  std::string yaml = "algorithm:\n  clip_low: 0.2\n  clip_hgh: 0.28\n";
  CHECK(error_of(yaml) ==
        "unknown key 'algorithm.clip_hgh' (configs/x.yaml:3); did you mean 'algorithm.clip_high'?");
}

TEST_CASE("config: unknown section is an error with a suggestion", "[config]") {
  CHECK(error_of("rolout:\n  group_size: 4\n") ==
        "unknown section 'rolout' (configs/x.yaml:1); did you mean 'rollout'?");
}

TEST_CASE("config: wrong type names key, value and line", "[config]") {
  CHECK(error_of("rollout:\n  group_size: eight\n") ==
        "rollout.group_size must be an integer, got 'eight' (configs/x.yaml:2)");
  CHECK(error_of("train:\n  steps: [1, 2]\n") == "train.steps must be an integer (configs/x.yaml:2)");
}

TEST_CASE("config: a bad value names key and value", "[config]") {
  CHECK(error_of("rollout:\n  group_size: 1\n") ==
        "rollout.group_size must be an integer in [2, 4096], got '1' (configs/x.yaml:2)");
  CHECK(error_of("algorithm:\n  loss_agg: token-sum\n") ==
        "algorithm.loss_agg must be one of [token-mean, seq-mean-token-mean, seq-mean-token-sum-norm], got 'token-sum'");
  // The other closed choices read their name tables too (trainer/choices.h).
  CHECK(error_of("optim:\n  schedule: step\n") == "optim.schedule must be one of [constant, linear, cosine], got 'step'");
  CHECK(error_of("model:\n  dtype: fp16\n") == "model.dtype must be one of [auto, fp32, bf16], got 'fp16'");
  CHECK(error_of("run:\n  device: tpu\n") == "run.device must be one of [auto, cpu, cuda], got 'tpu'");
  CHECK(error_of("distributed:\n  backend: ucc\n") ==
        "distributed.backend must be one of [auto, nccl, gloo, mpi], got 'ucc'");
  CHECK(error_of("train:\n  stop_at_accuracy: 0.5\n") ==
        "train.stop_at_accuracy 0.5 reads the periodic eval: set train.eval_every > 0 too");
}

TEST_CASE("config: verl's KL estimator names map to ours, unknown ones are refused", "[config]") {
  CHECK(parse_config("algorithm: {kl_estimator: kl}\n", "x.yaml").algorithm.kl_estimator == "k1");
  CHECK(parse_config("algorithm: {kl_estimator: mse}\n", "x.yaml").algorithm.kl_estimator == "k2");
  CHECK(parse_config("", "x.yaml", {"algorithm.kl_estimator=low_var_kl"}).algorithm.kl_estimator == "k3");
  CHECK(parse_config("", "x.yaml", {"algorithm.kl_estimator=k2"}).algorithm.kl_estimator == "k2");
  CHECK_THROWS_WITH(parse_config("algorithm: {kl_estimator: k4}\n", "x.yaml"), Catch::Contains("kl_estimator"));
}

TEST_CASE("config: overrides apply in order and are checked", "[config]") {
  Config c = parse_config("rollout:\n  group_size: 4\n", "x.yaml",
                          {"rollout.group_size=6", "algorithm.clip_high=0.28", "rollout.stop=[a, b]"});
  CHECK(c.rollout.group_size == 6);
  CHECK(c.algorithm.clip_high == Approx(0.28));
  CHECK(c.rollout.stop == std::vector<std::string>{"a", "b"});
  CHECK(error_of("", {"algorithm.clip_hgh=0.3"}) ==
        "unknown key 'algorithm.clip_hgh' (command-line override); did you mean 'algorithm.clip_high'?");
  CHECK(error_of("", {"rollout.group_size=x"}) ==
        "rollout.group_size must be an integer, got 'x' (command-line override)");
  CHECK_THAT(error_of("", {"nosection"}), Catch::Contains("must look like section.key=value"));
}

TEST_CASE("config: reward overrides address functions by name (ablation)", "[config]") {
  Config c = parse_config("rewards:\n  - name: math_accuracy\n  - name: format\n    weight: 0.5\n", "x.yaml",
                          {"rewards.format.weight=0", "rewards.math_accuracy.mode=signed"});
  CHECK(c.rewards[1].weight == 0.0);
  CHECK(c.rewards[0].args.at("mode") == "signed");
  CHECK_THAT(error_of("", {"rewards.formt.weight=0"}), Catch::Contains("no reward named 'formt'"));
}

TEST_CASE("config: YAML syntax errors name the line", "[config]") {
  CHECK_THAT(error_of("run:\n  seed: [1\n"), Catch::StartsWith("configs/x.yaml:"));
}
