// Rejection sampling (`rlvr distill`) with a tiny teacher: a builtin:tiny model fine-tuned until it has
// memorised four arithmetic problems, asked for k samples per problem on those four plus two copies whose
// reference was made wrong. Only verified completions may be kept, at most max_per_problem distinct ones per
// problem, and the output must load back as an SFT dataset.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "common/fs.h"
#include "data/dataset.h"
#include "rewards/verifier.h"
#include "trainer/config.h"
#include "recipes/distill.h"
#include "trainer/run_setup.h"
#include "trainer/sft.h"

using namespace rlvr;
namespace fs = std::filesystem;

namespace {

const char* kTeacher = R"(
run: {seed: 3, device: cpu, threads: 1}
model: {path: "builtin:tiny"}
data: {train: "builtin:arithmetic", template: raw, template_string: "{prompt}\n", task_train_size: 4, task_eval_size: 4}
rollout: {max_new_tokens: 32, max_batch_seqs: 64}
optim: {lr: 3.0e-3, warmup_steps: 10}
train: {steps: 200, prompts_per_step: 4, micro_batch_size: 4, keep_last: 1}
logging: {console_every: 1000}
)";

}  // namespace

TEST_CASE("distill: a tiny teacher yields only verified completions as an SFT dataset", "[trainer][loop]") {
  const auto dir = fs::temp_directory_path() / "rlvr_distill_test";
  fs::remove_all(dir);
  auto cfg = parse_config(kTeacher, "teacher.yaml", {"run.output_dir=" + (dir / "teacher").string()});
  auto sft = trainer::run_sft(cfg);
  REQUIRE(sft.steps_done == 200);
  REQUIRE(sft.last_metrics.at("loss") < 0.05);  // the four solutions are memorised

  ModelConfig mc = cfg.model;
  mc.path = sft.last_checkpoint;
  auto teacher = trainer::load_policy(mc, dir, 0, at::kCPU);
  auto problems = trainer::load_train_data(cfg);  // the four memorised problems
  REQUIRE(problems.size() == 4);
  for (int i = 0; i < 2; ++i) {  // the same prompts with a wrong reference: nothing may be kept for them
    auto bad = problems[i];
    bad.id += "-wrong";
    bad.reference = "-987654";
    problems.push_back(bad);
  }
  recipes::DistillOptions o;
  o.gen.samples = 6;
  o.gen.sampling.temperature = 1.0;
  o.gen.sampling.max_new_tokens = 32;
  o.gen.seed = 11;
  o.max_per_problem = 2;
  const auto out = dir / "distilled.jsonl";
  auto rep = recipes::distill(teacher, problems, cfg.data, o, out.string());

  CHECK(rep.problems == 6);
  CHECK(rep.generated == 36);
  CHECK(rep.correct <= 24);  // only the four right references can be matched
  CHECK(rep.correct >= 12);  // a memorising teacher is right most of the time, even sampling at T = 1
  CHECK(rep.problems_with_one == 4);
  CHECK(rep.kept <= 8);

  // Every kept line: a verified solution of its own problem, at most 2 distinct per problem, SFT fields.
  std::map<std::string, std::set<std::string>> per_problem;
  int64_t lines = 0;
  for_each_line(out, [&](std::string_view line, size_t) {
    auto j = nlohmann::json::parse(line);
    ++lines;
    for (const char* k : {"id", "problem", "answer", "solution"}) REQUIRE(j.contains(k));
    const auto answer = j["answer"].get<std::string>();
    CHECK(answer != "-987654");
    CHECK(rewards::verify(j["solution"].get<std::string>(), answer).verdict == rewards::Verdict::correct);
    CHECK(per_problem[j["problem"].get<std::string>() + "|" + answer].insert(j["solution"].get<std::string>()).second);
  });
  CHECK(lines == rep.kept);
  for (auto& [key, sols] : per_problem) CHECK(sols.size() <= 2);
  CHECK(per_problem.size() == 4);

  // It loads back as SFT data: prompt from "problem", reference from "answer", target from "solution".
  auto back = data::load_jsonl(out);
  REQUIRE(static_cast<int64_t>(back.size()) == rep.kept);
  for (const auto& r : back) {
    REQUIRE(r.solution.has_value());
    CHECK(rewards::verify(*r.solution, r.reference).verdict == rewards::Verdict::correct);
  }
  fs::remove_all(dir);
}
