// The ablation file: arms, controls, overrides routed to the ablation or to every arm, errors that name the
// key; the per-run config (seed, directory, rubric) and the control rubrics derived from the base.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "recipes/ablate_config.h"

using namespace rlvr;
using namespace rlvr::recipes;

namespace {
const char* kFile = R"(
name: demo
base_config: ""
base_overrides: [train.steps=7]
seeds: [1, 2]
arms:
  - name: accuracy
  - name: weighted
    overrides: [rollout.temperature=0.7]
    rewards:
      - {name: math_accuracy, weight: 1.0}
      - {name: format, weight: 0.5, args: {style: boxed}}
controls: [random_reward, format_only]
eval: {samples: 2, temperature: 0.5}
)";
}

TEST_CASE("ablation file: arms controls and defaults", "[recipes][config]") {
  auto ab = parse_ablation(kFile, "demo.yaml");
  REQUIRE(ab.arms.size() == 4);
  CHECK(ab.arms[0].name == "accuracy");
  CHECK(ab.arms[1].rewards->size() == 2);
  CHECK(ab.arms[1].overrides == std::vector<std::string>{"rollout.temperature=0.7"});
  CHECK(ab.arms[2].name == "random_reward");
  CHECK(ab.arms[2].control == "random_reward");
  CHECK(ab.arms[3].control == "format_only");
  CHECK(ab.baseline == "accuracy");  // the first arm
  CHECK(ab.seeds == std::vector<int64_t>{1, 2});
  CHECK(ab.eval.samples == 2);
  CHECK(ab.out_dir() == "runs/demo");
}

TEST_CASE("ablation file: overrides go to the ablation or to every arm", "[recipes][config]") {
  auto ab = parse_ablation(kFile, "demo.yaml", {"eval.samples=8", "seeds=[3,4,5]", "train.prompts_per_step=2",
                                                "schedule.parallel=2", "baseline=weighted"});
  CHECK(ab.eval.samples == 8);
  CHECK(ab.seeds == std::vector<int64_t>{3, 4, 5});
  CHECK(ab.schedule.parallel == 2);
  CHECK(ab.baseline == "weighted");
  CHECK(ab.base_overrides == std::vector<std::string>{"train.steps=7", "train.prompts_per_step=2"});
}

TEST_CASE("ablation file: errors name the key and value", "[recipes][config]") {
  CHECK_THROWS_WITH(parse_ablation("name: x\nsedes: [1]\narms: [{name: a}, {name: b}]\n", "f.yaml"),
                    Catch::Contains("unknown key 'sedes' (f.yaml:2)") && Catch::Contains("did you mean 'seeds'"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}, {name: a}]\n", "f.yaml"), Catch::Contains("two arms are named 'a'"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}]\n", "f.yaml"), Catch::Contains("at least 2 arms"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}, {name: b}]\nbaseline: c\n", "f.yaml"),
                    Catch::Contains("baseline 'c' is not an arm"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}, {name: b}]\nseeds: [1, 1]\n", "f.yaml"),
                    Catch::Contains("repeat a seed"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}]\ncontrols: [random]\n", "f.yaml"),
                    Catch::Contains("unknown control 'random'"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a, overide: [x]}, {name: b}]\n", "f.yaml"),
                    Catch::Contains("unknown key 'arms[0].overide'") && Catch::Contains("did you mean 'arms[0].overrides'"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: 'a/b'}, {name: b}]\n", "f.yaml"), Catch::Contains("got 'a/b'"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}, {name: b}]\neval: {samples: 0}\n", "f.yaml"),
                    Catch::Contains("eval.samples must be >= 1, got 0"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}, {name: b}]\n", "f.yaml", {"eval.sample=3"}),
                    Catch::Contains("eval.sample"));
  CHECK_THROWS_WITH(parse_ablation("arms: [{name: a}, {name: b}]\n", "f.yaml", {"evl.samples=3"}),
                    Catch::Contains("unknown ablation key 'evl'") && Catch::Contains("did you mean 'eval'"));
  CHECK_THROWS_AS(parse_ablation("arms: [{name: a}, {name: b}]\n", "f.yaml", {"seeds"}), ConfigError);
  auto bad = parse_ablation("arms: [{name: a}, {name: b, rewards: [{name: math_acc}]}]\n", "f.yaml");
  CHECK_THROWS_WITH(arm_config(bad, bad.arms[1], 1, "", 0, "d"),
                    Catch::Contains("arm 'b': unknown reward function 'math_acc'"));
}

TEST_CASE("per-run config: seed directory and rubric per arm", "[recipes][config]") {
  auto ab = parse_ablation(kFile, "demo.yaml");
  auto c = arm_config(ab, ab.arms[1], 2, "base/model", 0.25, "out/runs/weighted/seed_2");
  CHECK(c.run.seed == 2);
  CHECK(c.run.output_dir == "out/runs/weighted/seed_2");
  CHECK(c.model.path == "base/model");
  CHECK(c.train.steps == 7);                 // base override
  CHECK(c.rollout.temperature == 0.7);       // arm override
  REQUIRE(c.rewards.size() == 2);
  CHECK(c.rewards[1].name == "format");
  CHECK(c.rewards[1].weight == 0.5);

  auto r = arm_config(ab, ab.arms[2], 1, "base/model", 0.25, "d");
  REQUIRE(r.rewards.size() == 2);
  CHECK(r.rewards[0].name == "random_reward");
  CHECK(r.rewards[0].args.at("rate") == "0.25");
  CHECK(r.rewards[1].name == "math_accuracy");  // kept at weight 0: training accuracy is still measured
  CHECK(r.rewards[1].weight == 0.0);

  auto f = arm_config(ab, ab.arms[3], 1, "base/model", 0.25, "d");
  REQUIRE(f.rewards.size() == 2);
  CHECK(f.rewards[0].name == "format");
  CHECK(f.rewards[0].args.at("style") == "boxed");  // the default raw template: a \boxed{} answer
  CHECK(f.rewards[0].weight == 1.0);
  CHECK(f.rewards[1].weight == 0.0);
}

TEST_CASE("control rubrics follow the base rubric", "[recipes][config]") {
  Config base;
  base.data.templ = "r1_zero";
  base.rewards = {{"math_accuracy", 1.0, {{"extraction", "strict"}}}, {"format", 0.2, {{"style", "r1"}}}};
  auto fo = control_rubric(Control::format_only, base, 0.1);
  REQUIRE(fo.size() == 2);
  CHECK(fo[0].name == "format");
  CHECK(fo[0].weight == 1.0);
  CHECK(fo[0].args.at("style") == "r1");
  CHECK(fo[1].args.at("extraction") == "strict");  // the base's verifier options, weight 0
  CHECK(fo[1].weight == 0.0);
  base.rewards = {{"math_accuracy", 1.0, {}}};
  auto f2 = control_rubric(Control::format_only, base, 0.1);
  CHECK(f2[0].args.at("style") == "r1");  // no format in the base: r1 for the r1_zero template
  auto rr = control_rubric(Control::random_reward, base, 0.125);
  CHECK(rr[0].args.at("rate") == "0.125");
}
