// Builtin tasks: determinism, split disjointness, solution correctness; the countdown checker.
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "common/error.h"
#include "data/countdown.h"
#include "data/dataset.h"
#include "data/tasks.h"

using namespace rlvr;
using namespace rlvr::data;

namespace {

std::string boxed_of(const Record& r) {
  auto b = last_boxed(*r.solution);
  return b ? *b : std::string("<none>");
}

// Evaluates "a+b*c-d" (integers, + - *, products first) independently of the generator.
int64_t eval_arith(const std::string& e) {
  std::vector<int64_t> terms;
  std::vector<char> signs;
  size_t i = 0;
  char sign = '+';
  while (i < e.size()) {
    int64_t prod = 1;
    while (true) {
      size_t j = i;
      while (j < e.size() && isdigit(static_cast<unsigned char>(e[j]))) ++j;
      prod *= std::stoll(e.substr(i, j - i));
      i = j;
      if (i < e.size() && e[i] == '*') {
        ++i;
        continue;
      }
      break;
    }
    terms.push_back(sign == '+' ? prod : -prod);
    if (i < e.size()) sign = e[i++];
  }
  int64_t s = 0;
  for (auto t : terms) s += t;
  return s;
}

}  // namespace

TEST_CASE("arithmetic: deterministic, prefix-stable, short at low levels, solutions end in the answer", "[data]") {
  auto a = generate_task("arithmetic", 1, 50, 7, Split::train);
  auto b = generate_task("arithmetic", 1, 50, 7, Split::train);
  auto c = generate_task("arithmetic", 1, 20, 7, Split::train);
  auto d = generate_task("arithmetic", 1, 50, 8, Split::train);
  REQUIRE(a.size() == 50);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].prompt == b[i].prompt);
  for (size_t i = 0; i < c.size(); ++i) CHECK(a[i].prompt == c[i].prompt);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].prompt != d[i].prompt;
  CHECK(differ > 40);
  CHECK(a[0].id == "arithmetic-d1-train-0");
  CHECK(a[0].extra["task"] == "arithmetic");
  CHECK(a[0].extra["split"] == "train");
  std::regex d1("Compute \\d{1,2}[+-]\\d{1,2}\\.");
  for (const auto& r : a) CHECK(std::regex_match(r.prompt, d1));

  for (int level = 1; level <= kMaxTaskDifficulty; ++level) {
    auto recs = generate_task("arithmetic", level, 300, 11, Split::train);
    std::set<std::string> prompts;
    for (const auto& r : recs) {
      INFO(r.prompt << " -> " << *r.solution);
      CHECK(boxed_of(r) == r.reference);
      CHECK(std::to_string(eval_arith(r.extra["expression"].get<std::string>())) == r.reference);
      if (level <= 2) {
        CHECK(r.prompt.size() < 40);
        CHECK(r.solution->size() < 60);
      }
      if (level <= 2) CHECK(r.prompt.find('*') == std::string::npos);
      prompts.insert(r.prompt);
    }
    CHECK(prompts.size() == recs.size());  // distinct while the space allows
  }
  // Golden values pin the generators: the builtin datasets must not change silently between versions.
  auto g = generate_task("arithmetic", 2, 1, 1, Split::train)[0];
  CHECK(g.prompt == "Compute 86+6-52.");
  CHECK(*g.solution == "86+6=92, 92-52=40. \\boxed{40}");
  auto gc = generate_task("countdown", 1, 1, 1, Split::train)[0];
  CHECK(gc.prompt == "Make 11 from 2 3 6 using + - * /, each at most once.");
  CHECK(*gc.solution == "3+2=5, 6+5=11. \\boxed{6+3+2}");
  auto one = generate_task("arithmetic", 1, 1, 0, Split::train)[0];
  // The documented format: steps then the boxed answer.
  std::regex sol("-?\\d+[+-]\\d+=-?\\d+\\. \\\\boxed\\{-?\\d+\\}");
  CHECK(std::regex_match(*one.solution, sol));
}

TEST_CASE("train and held-out splits are disjoint, for every size", "[data]") {
  for (const std::string task : {"arithmetic", "countdown"}) {
    auto train = generate_task(task, 1, 3000, 5, Split::train);
    auto held = generate_task(task, 1, 200, 5, Split::held_out);
    auto other_seed = generate_task(task, 1, 3000, 6, Split::train);
    std::set<std::string> train_prompts;
    for (const auto& r : train) train_prompts.insert(r.prompt);
    for (const auto& r : other_seed) train_prompts.insert(r.prompt);
    int overlap = 0;
    std::set<std::string> held_prompts;
    for (const auto& r : held) {
      overlap += train_prompts.count(r.prompt);
      held_prompts.insert(r.prompt);
    }
    CHECK(overlap == 0);
    CHECK(held_prompts.size() == held.size());
    CHECK(held[0].id == task + "-d1-held_out-0");
  }
}

TEST_CASE("countdown: solutions check out, targets are reachable and not given", "[data]") {
  for (int level = 1; level <= kMaxTaskDifficulty; ++level) {
    int64_t n = level <= 4 ? 200 : 40;
    auto recs = generate_task("countdown", level, n, 3, Split::train);
    REQUIRE(static_cast<int64_t>(recs.size()) == n);
    for (const auto& r : recs) {
      INFO(r.prompt << " -> " << *r.solution);
      auto v = check_countdown_record(boxed_of(r), r);
      CHECK(v.correct());
      auto nums = r.extra["numbers"].get<std::vector<int64_t>>();
      int64_t target = r.extra["target"].get<int64_t>();
      CHECK(std::to_string(target) == r.reference);
      CHECK(std::find(nums.begin(), nums.end(), target) == nums.end());
      CHECK(target >= 1);
      CHECK(target <= (level <= 3 ? 100 : 1000));
      CHECK(static_cast<int>(nums.size()) == std::vector<int>{3, 3, 4, 4, 5, 6}[level - 1]);
      if (level == 1) CHECK(r.prompt.size() < 60);
      // The shortest solution needs 1, 2, 2, 2, 3, 3 operations by level (one step per operation).
      CHECK(std::count(r.solution->begin(), r.solution->end(), '=') >= std::vector<int>{1, 2, 2, 2, 3, 3}[level - 1]);
    }
  }
  auto a = generate_task("countdown", 2, 30, 1, Split::held_out);
  auto b = generate_task("countdown", 2, 30, 1, Split::held_out);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].solution == b[i].solution);
}

TEST_CASE("countdown checker: exact rationals, number usage, syntax and hostile input", "[data]") {
  const std::vector<int64_t> nums = {3, 7, 8, 6};
  CHECK(check_countdown("(8-3)*7-6", nums, 29).correct());
  CHECK(check_countdown(" ( 8 - 3 ) \\times 7 - 6 = 29", nums, 29).correct());
  CHECK(check_countdown("(8−3)×7−6", nums, 29).correct());
  // Rational intermediates are exact: 8/(3-8/3) = 8/(1/3) = 24
  CHECK(check_countdown("8/(3-8/3)", {8, 3, 8, 3}, 24).correct());
  auto w = check_countdown("8*3", nums, 29);
  CHECK(w.status == CountdownStatus::wrong_value);
  CHECK(w.value == Rational{24, 1});
  auto frac = check_countdown("7/3", nums, 2);
  CHECK(frac.status == CountdownStatus::wrong_value);
  CHECK(frac.value == Rational{7, 3});
  CHECK(check_countdown("8+8", nums, 16).status == CountdownStatus::bad_numbers);
  CHECK_THAT(check_countdown("9+20", nums, 29).message, Catch::Contains("9, which is not among [3, 7, 8, 6]"));
  CHECK(check_countdown("29", nums, 29).status == CountdownStatus::bad_numbers);
  CHECK(check_countdown("-3+8", nums, 5).status == CountdownStatus::invalid);  // no unary minus
  CHECK(check_countdown("8/(3-3)", {8, 3, 3}, 1).status == CountdownStatus::invalid);
  CHECK(check_countdown("(8-3", nums, 5).status == CountdownStatus::invalid);
  CHECK(check_countdown("8-3)", nums, 5).status == CountdownStatus::invalid);
  CHECK(check_countdown("", nums, 5).status == CountdownStatus::invalid);
  CHECK(check_countdown("8 3", nums, 5).status == CountdownStatus::invalid);
  CHECK(check_countdown("8.5-3", nums, 5).status == CountdownStatus::invalid);
  CHECK(check_countdown("x+8", nums, 5).status == CountdownStatus::invalid);
  CHECK(check_countdown("8-3=", nums, 5).status == CountdownStatus::invalid);
  // Hostile: deep nesting, huge literals, long text, overflow -> invalid, never a crash or a hang.
  std::string deep = std::string(100, '(') + "8" + std::string(100, ')');
  CHECK(check_countdown(deep, nums, 8).status == CountdownStatus::invalid);
  CHECK(check_countdown("99999999999999999999999+3", nums, 5).status == CountdownStatus::invalid);
  std::string longtext(100000, '8');
  CHECK(check_countdown(longtext, nums, 5).status == CountdownStatus::invalid);
  const int64_t big = 3037000500;  // big^2 fits, big^4 does not
  CHECK(check_countdown("3037000500*3037000500*3037000500*3037000500", {big, big, big, big}, 1).status ==
        CountdownStatus::invalid);
  std::string many = "3";
  for (int i = 0; i < 40; ++i) many += "+3";
  CHECK(check_countdown(many, std::vector<int64_t>(41, 3), 123).status == CountdownStatus::invalid);
  CHECK(std::string(to_string(CountdownStatus::bad_numbers)) == "bad_numbers");
}

TEST_CASE("countdown solver: fewest numbers, steps that compute the expression, budget", "[data]") {
  auto s = solve_countdown({3, 7, 8, 6}, 29);
  REQUIRE(s.has_value());
  CHECK(check_countdown(s->expression, {3, 7, 8, 6}, 29).correct());
  CHECK(s->steps.size() == 2);  // 7*3=21, 21+8=29: no single operation on two numbers makes 29
  auto t = solve_countdown({3, 7, 8, 6}, 15);
  REQUIRE(t.has_value());
  CHECK(t->steps.size() == 1);  // 8+7
  CHECK(t->expression == "8+7");
  CHECK(t->steps[0] == "8+7=15");
  CHECK(!solve_countdown({1, 1}, 7).has_value());
  CHECK(!solve_countdown({3, 7, 8, 6, 25, 50}, 997, /*node_budget=*/10).has_value());
}

TEST_CASE("task API errors list the menu", "[data]") {
  CHECK_THROWS_WITH(generate_task("arith", 1, 1, 0, Split::train), Catch::Contains("known: [arithmetic, countdown]"));
  CHECK_THROWS_AS(generate_task("arithmetic", 0, 1, 0, Split::train), ConfigError);
  CHECK_THROWS_AS(generate_task("arithmetic", kMaxTaskDifficulty + 1, 1, 0, Split::train), ConfigError);
  CHECK(parse_split("eval") == Split::held_out);
  CHECK_THROWS_AS(parse_split("dev"), ConfigError);
  Record plain;
  plain.id = "x";
  CHECK_THROWS_AS(check_countdown_record("1+2", plain), Error);
}

TEST_CASE("countdown checker never throws on random text", "[data]") {
  const std::string alphabet = "0123456789+-*/()= \\timesdvcolfrg\xC3\x97\xE2\x88\x92.";
  uint64_t x = 12345;
  auto next = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  int correct = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    size_t len = next() % 300;
    for (size_t j = 0; j < len; ++j) s.push_back(alphabet[next() % alphabet.size()]);
    CountdownVerdict v;
    REQUIRE_NOTHROW(v = check_countdown(s, {1, 2, 3, 4, 5, 6}, 10));
    correct += v.correct();
    if (v.status == CountdownStatus::wrong_value || v.correct()) CHECK(v.value.has_value());
  }
  CHECK(correct < 3000);
}
