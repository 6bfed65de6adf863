// JSONL datasets: field mapping, GSM8K '####' answers, bad lines, missing fields, real data files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

#include "common/error.h"
#include "common/fs.h"
#include "data/dataset.h"
#include "data/source.h"

using namespace rlvr;
using namespace rlvr::data;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name, const std::string& content) {
  auto dir = fs::temp_directory_path() / "rlvr_test_data";
  fs::create_directories(dir);
  auto p = dir / name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

bool shared_file(const std::string& name, fs::path& out) {
  out = fs::path(RLVR_SHARED_DATA) / name;
  if (fs::exists(out)) return true;
  WARN("SKIPPED: " << out.string() << " is absent (real-data test needs /work/shared/data)");
  return false;
}

}  // namespace

TEST_CASE("reference parsing: GSM8K '####', thousands separators, boxed solutions", "[data]") {
  CHECK(parse_reference("So she made 1,080 dollars.\n#### 1,080") == "1080");
  CHECK(parse_reference("#### -12,345.5 ") == "-12345.5");
  CHECK(parse_reference("#### 1,2") == "1,2");  // not a thousands grouping: a tuple, left alone
  CHECK(parse_reference("  \\frac{1}{2} ") == "\\frac{1}{2}");
  ReferenceKind kind;
  CHECK(parse_reference("so \\boxed{\\frac{a}{b}} and then \\boxed{x^{2}}.", true, &kind) == "x^{2}");
  CHECK(kind == ReferenceKind::boxed);
  CHECK(parse_reference("\\boxed{5}", false, &kind) == "\\boxed{5}");  // an answer field is taken as is
  CHECK(kind == ReferenceKind::plain);
  CHECK(strip_thousands("1,000,000") == "1000000");
  CHECK(strip_thousands("12,34") == "12,34");
  CHECK(strip_thousands("1234,567") == "1234,567");
  CHECK(!last_boxed("\\boxed{unbalanced").has_value());
  CHECK(normalize_whitespace("  a \t b\n\nc ") == "a b c");
}

TEST_CASE("field mapping: default keys, configurable keys, extra fields, ids", "[data]") {
  auto p = temp_file("map.jsonl",
                     "{\"id\": \"a\", \"problem\": \"P1\", \"answer\": \"1\", \"level\": 3}\n"
                     "{\"question\": \"Q2\", \"answer\": \"Step.\\n#### 1,080\"}\n"
                     "\n"
                     "{\"prompt\": \"P3\", \"solution\": \"so \\\\boxed{7}\"}\n"
                     "{\"problem\": \"P4\", \"answer\": 27.0, \"solution\": \"worked\"}\n");
  LoadReport rep;
  Dataset d = load_jsonl(p, {}, &rep);
  REQUIRE(d.size() == 4);
  CHECK(rep.lines == 4);
  CHECK(rep.gsm8k_parsed == 1);
  CHECK(rep.boxed_parsed == 1);
  CHECK(d[0].id == "a");
  CHECK(d[0].prompt == "P1");
  CHECK(d[0].reference == "1");
  CHECK(!d[0].solution);
  CHECK(d[0].extra["level"] == 3);
  CHECK(!d[0].extra.contains("problem"));
  CHECK(d[1].id == "map-2");  // default id: file stem and line number
  CHECK(d[1].prompt == "Q2");
  CHECK(d[1].reference == "1080");
  CHECK(d[1].solution == std::optional<std::string>("Step.\n#### 1,080"));  // the worked answer is the SFT target
  CHECK(d[2].id == "map-4");
  CHECK(d[2].reference == "7");
  CHECK(d[2].solution == std::optional<std::string>("so \\boxed{7}"));
  CHECK(d[3].reference == "27");
  CHECK(d[3].solution == std::optional<std::string>("worked"));

  LoadOptions o;
  o.mapping.prompt_key = "question";
  o.mapping.answer_key = "answer";
  LoadReport rep2;
  Dataset q = load_jsonl(p, o, &rep2);
  REQUIRE(q.size() == 1);
  CHECK(q[0].prompt == "Q2");
  CHECK(rep2.missing_prompt == 3);
  CHECK(rep2.skipped_lines == std::vector<int64_t>{1, 4, 5});

  auto j = to_json(d[0]);
  CHECK(j["prompt"] == "P1");
  CHECK(j["answer"] == "1");
  CHECK(j["level"] == 3);
}

TEST_CASE("bad lines are errors naming file and line, missing fields are counted or fatal", "[data]") {
  auto bad = temp_file("bad.jsonl", "{\"problem\": \"a\", \"answer\": \"1\"}\n{\"problem\": \"b\", \n");
  try {
    load_jsonl(bad);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("bad.jsonl:2: invalid JSON"));
  }
  auto arr = temp_file("arr.jsonl", "[1, 2]\n");
  CHECK_THROWS_WITH(load_jsonl(arr), Catch::Contains("arr.jsonl:1: expected a JSON object"));

  auto miss = temp_file("miss.jsonl",
                        "{\"problem\": \"a\", \"answer\": \"1\"}\n"
                        "{\"problem\": \"b\", \"answer\": null}\n"
                        "{\"answer\": \"3\"}\n"
                        "{\"problem\": \"d\", \"answer\": \"  \"}\n");
  LoadReport rep;
  auto d = load_jsonl(miss, {}, &rep);
  CHECK(d.size() == 1);
  CHECK(rep.missing_reference == 2);
  CHECK(rep.missing_prompt == 1);
  LoadOptions strict;
  strict.on_missing = OnMissing::error;
  CHECK_THROWS_WITH(load_jsonl(miss, strict), Catch::Contains("miss.jsonl:2: no reference"));

  LoadOptions wrong;
  wrong.mapping.prompt_key = "text";
  CHECK_THROWS_AS(load_jsonl(miss, wrong), ConfigError);
  CHECK_THROWS_WITH(load_jsonl(miss, wrong), Catch::Contains("keys of the first record: [answer, problem]"));
  CHECK_THROWS_WITH(load_jsonl("/nonexistent/x.jsonl"), Catch::Contains("does not exist"));
}

TEST_CASE("sources: builtin tasks and the eval fallback", "[data]") {
  SourceOptions o;
  o.count = 5;
  o.seed = 3;
  auto d = load_source("builtin:arithmetic", o);
  CHECK(d.size() == 5);
  CHECK(eval_source("builtin:countdown", "") == "builtin:countdown");
  CHECK(eval_source("train.jsonl", "") == "");
  CHECK(eval_source("train.jsonl", "test.jsonl") == "test.jsonl");
  CHECK_THROWS_AS(load_source("builtin:nope", o), ConfigError);
  CHECK_THROWS_AS(load_source("/nonexistent.jsonl", o), ConfigError);
  int64_t dropped = drop_long_prompts(d, [](const Record& r) { return static_cast<int64_t>(r.prompt.size()); }, 0);
  CHECK(dropped == 0);
  std::string first = d[0].id;
  dropped = drop_long_prompts(d, [&](const Record& r) -> int64_t { return r.id == first ? 100 : 1; }, 10);
  CHECK(dropped == 1);
  CHECK(d.size() == 4);
}

TEST_CASE("real data: GSM8K train maps to 7473 integer answers, also from the raw '####' solutions", "[data][real]") {
  fs::path p;
  if (!shared_file("gsm8k_train.jsonl", p)) return;
  LoadReport rep;
  Dataset d = load_jsonl(p, {}, &rep);
  REQUIRE(d.size() == 7473);
  CHECK(rep.missing_prompt + rep.missing_reference == 0);
  std::regex integer("-?\\d+");
  int64_t ok = 0;
  for (const auto& r : d) ok += std::regex_match(r.reference, integer) && r.solution.has_value();
  CHECK(ok == 7473);
  CHECK(d[0].id == "gsm8k-train-00000");
  CHECK(d[0].reference == "72");

  // The same answers parsed out of the worked solutions ('####', thousands commas removed).
  LoadOptions o;
  o.mapping.answer_key = "solution";
  LoadReport rep2;
  Dataset s = load_jsonl(p, o, &rep2);
  REQUIRE(s.size() == d.size());
  CHECK(rep2.gsm8k_parsed == 7473);
  int64_t same = 0;
  for (size_t i = 0; i < d.size(); ++i) same += s[i].reference == d[i].reference;
  CHECK(same == 7473);
}

TEST_CASE("real data: MATH-500 maps 500 records, boxed solution answers equal the reference", "[data][real]") {
  fs::path p;
  if (!shared_file("math500_test.jsonl", p)) return;
  Dataset d = load_jsonl(p);
  REQUIRE(d.size() == 500);
  CHECK(d[0].id == "test/precalculus/807.json");
  CHECK(d[0].reference == "\\left( 3, \\frac{\\pi}{2} \\right)");
  CHECK(d[0].extra["subject"] == "Precalculus");
  CHECK(d[0].extra["level"] == 2);
  LoadOptions o;
  o.mapping.answer_key = "solution";
  Dataset s = load_jsonl(p, o);
  REQUIRE(s.size() == 500);
  int64_t same = 0;
  for (size_t i = 0; i < d.size(); ++i) same += s[i].reference == d[i].reference;
  CHECK(same == 500);
}
