// Tests for rewards/: the verifier case table (tests/rewards/verifier_cases.jsonl, by category), hostile
// inputs answered within the caps, extraction details, agreement with the peer cases in shared data, and
// the reward functions / Rubric built from RewardSpec.
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "rewards/cases.h"
#include "rewards/extract.h"
#include "rewards/rubric.h"
#include "rewards/verifier.h"

using namespace rlvr::rewards;

namespace {

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

Verdict want_of(const std::string& s) {
  if (s == "correct") return Verdict::correct;
  if (s == "wrong") return Verdict::wrong;
  return Verdict::ungradable;
}

}  // namespace

TEST_CASE("verifier case table, by category", "[rewards][verifier]") {
  auto cases = read_jsonl(RLVR_SOURCE_DIR "/tests/rewards/verifier_cases.jsonl");
  REQUIRE(cases.size() >= 300);
  std::map<std::string, std::pair<int, int>> by_cat;
  std::vector<std::string> failures;
  for (auto& c : cases) {
    std::string cat = c["cat"], gold = c["gold"], pred = c["pred"], want = c["want"];
    VerifyResult r = verify(pred, gold);
    bool ok = r.verdict == want_of(want);
    by_cat[cat].first += ok;
    by_cat[cat].second += 1;
    if (!ok)
      failures.push_back(cat + ": gold=" + gold + " pred=" + pred + " want=" + want + " got=" +
                         verdict_name(r.verdict) + " (pred_extracted=" + r.pred_extracted +
                         ", gold_extracted=" + r.gold_extracted + ", " + r.reason + ")");
  }
  for (auto& [cat, v] : by_cat) INFO(cat << ": " << v.first << "/" << v.second);
  for (auto& f : failures) UNSCOPED_INFO(f);
  CHECK(failures.empty());
}

TEST_CASE("hostile inputs are answered within the caps", "[rewards][verifier][caps]") {
  SECTION("10^{10^{10}} as gold and prediction") {
    auto r = verify("\\boxed{10^{10^{10}}}", "10^{10^{10}}");
    CHECK(r.verdict != Verdict::wrong);  // same text: correct; otherwise the cap makes it ungradable
    auto r2 = verify("\\boxed{10^{10^{10}}}", "5");
    CHECK(r2.verdict != Verdict::correct);
    auto r3 = verify("\\boxed{2^{2^{2^{2^{2^{2^{2}}}}}}}", "10^{10^{10}}");
    CHECK(r3.verdict != Verdict::correct);
    auto r4 = verify("\\boxed{(x+1)^{100000}}", "x^2");
    CHECK(r4.verdict != Verdict::correct);
    // inf - inf at every point and a GiNaC expansion beyond its degree cap: undecidable -> ungradable.
    auto r5 = verify("\\boxed{((x+y+z)^{64})^{64} - ((x+y+z)^{64})^{64} + x}", "x");
    CHECK(r5.verdict == Verdict::ungradable);
    CHECK(r5.reason.find("cap") != std::string::npos);
  }
  SECTION("5,000 nested braces") {
    std::string s = "\\boxed{" + std::string(5000, '{') + "1" + std::string(5000, '}') + "}";
    auto r = verify(s, "1");
    CHECK(r.verdict == Verdict::ungradable);
    std::string open_only = "\\boxed{" + std::string(5000, '{');
    CHECK(verify(open_only, "1").verdict != Verdict::correct);
    std::string parens = std::string(5000, '(') + "1" + std::string(5000, ')');
    CHECK(verify(parens, "1").verdict != Verdict::wrong);  // the last number, or the depth cap
    CHECK(verify("1", parens).verdict == Verdict::ungradable);
  }
  SECTION("a completion longer than the scanned tail earns nothing from the cut text") {
    VerifyOptions opt;
    const size_t tail = opt.scan_tail_chars;
    // The final box opens before the cut: the tail holds only its inside, where a number sits.
    std::string open_early = "\\boxed{" + std::string(tail + 100, 'x') + " 42}";
    CHECK(verify(open_early, "42").verdict == Verdict::ungradable);
    // Never closed at all: no final answer, whatever number precedes it.
    std::string never_closed = "42. " + std::string(tail + 100, 'y') + " \\boxed{4";
    CHECK(verify(never_closed, "42").verdict == Verdict::ungradable);
    CHECK(verify(never_closed, "4").verdict == Verdict::ungradable);
    // Unanchored fallbacks (the last number) are off beyond the tail, anchored answers still count.
    std::string bare = std::string(tail + 100, 'z') + " so 42.";
    CHECK(verify(bare, "42").verdict == Verdict::ungradable);
    CHECK(verify(bare.substr(tail), "42").verdict == Verdict::correct);  // short: the fallback applies
    std::string boxed = std::string(tail + 100, 'z') + " \\boxed{42}";
    CHECK(verify(boxed, "42").verdict == Verdict::correct);
    CHECK(verify(std::string(tail + 100, 'z') + " the answer is 42.", "42").verdict == Verdict::correct);
  }
  SECTION("a megabyte of digits") {
    std::string digits(1 << 20, '7');
    auto r = verify(digits, "7");
    CHECK(r.verdict != Verdict::correct);
    auto r2 = verify("\\boxed{" + digits + "}", "7");
    CHECK(r2.verdict == Verdict::ungradable);
    auto r3 = verify("\\boxed{7}", digits);
    CHECK(r3.verdict == Verdict::ungradable);
    CHECK_FALSE(answers_equivalent(digits, digits.substr(1)));
  }
  SECTION("invalid UTF-8 and control bytes") {
    std::string bad = "\xff\xfe\x80 answer \xc3\x28 is \\boxed{4\xa0} \x00\x01 end";
    bad.push_back('\0');
    auto r = verify(bad, "4");
    CHECK((r.verdict == Verdict::correct || r.verdict == Verdict::wrong || r.verdict == Verdict::ungradable));
    auto r2 = verify("\\boxed{4}", "\xff\xfe");
    CHECK(r2.verdict != Verdict::correct);
    std::string noise;
    for (int i = 0; i < 4096; ++i) noise.push_back(char((i * 131 + 7) & 0xff));
    verify(noise, noise);
    verify(noise, "1");
    SUCCEED("no crash");
  }
  SECTION("many boxes and huge lists stay bounded") {
    std::string many;
    for (int i = 0; i < 20000; ++i) many += "\\boxed{" + std::to_string(i) + "}. That was a guess; try again.\n\n";
    auto r = verify(many, "19999");
    CHECK(r.verdict == Verdict::correct);
    std::string list;
    for (int i = 0; i < 3000; ++i) list += std::to_string(i) + ",";
    CHECK(verify("\\boxed{" + list + "}", list).verdict != Verdict::wrong);
    std::string factorial = "\\boxed{100000!}";
    CHECK(verify(factorial, "5").verdict != Verdict::correct);
  }
}

TEST_CASE("extraction", "[rewards][extract]") {
  CHECK(extract_answer("12+7=19, 19-3=16. \\boxed{16}").value() == "16");
  CHECK(extract_answer("\\boxed{\\frac{a}{b}} done").value() == "\\frac{a}{b}");
  CHECK(extract_answer("<think>x</think><answer>42</answer>").value() == "42");
  CHECK(extract_answer("So we get\n#### 1,080").value() == "1080");
  CHECK(extract_answer("Hence the answer is 7.").value() == "7");
  CHECK(extract_answer("We end with 3 apples and 12 pears").value() == "12");
  CHECK_FALSE(extract_answer("no digits at all").has_value());
  VerifyOptions strict;
  strict.strict_extraction = true;
  strict.expr = false;
  CHECK_FALSE(extract_answer("We end with 3 apples and 12 pears", strict).has_value());
  CHECK(extract_answer("The result is $\\frac{1}{2}$ here", strict).value() == "\\frac{1}{2}");
  CHECK(detail::last_boxed("\\boxed{1} and \\boxed{2}").value() == "1, 2");
  CHECK(detail::last_boxed("\\boxed{a{b}c}").value() == "a{b}c");
  CHECK(detail::normalize_plain_number("7,425,000") == "7425000");
  CHECK(detail::normalize_plain_number("1000,99") == "1000.99");
  CHECK(detail::normalize_plain_number("6,8") == "6,8");
  CHECK(detail::extract_letter("The answer is (B).", false).value() == 'B');
  CHECK(extract_gold("Thus $x = \\boxed{5}$.") == "5");
  CHECK(extract_gold("$\\frac{1}{2}$") == "$\\frac{1}{2}$");
}

TEST_CASE("verdicts carry the extracted answers", "[rewards][verifier]") {
  auto r = verify("so \\boxed{\\dfrac{1}{2}}", "0.5");
  CHECK(r.verdict == Verdict::correct);
  CHECK(r.pred_extracted == "\\dfrac{1}{2}");
  CHECK(r.gold_extracted == "0.5");
  auto u = verify("nothing", "5");
  CHECK(u.verdict == Verdict::ungradable);
  CHECK(u.pred_extracted.empty());
  auto g = verify("\\boxed{5}", "\\frac{");
  CHECK(g.verdict == Verdict::ungradable);
  CHECK(answers_equivalent("\\frac{1}{2}", "0.5"));
  CHECK(answers_equivalent("x^2-1", "(x-1)(x+1)"));
  CHECK_FALSE(answers_equivalent("2", "3"));
  VerifyOptions p2;
  p2.float_rounding = 2;
  CHECK(answers_equivalent("\\frac{1}{3}", "0.33", p2));
  CHECK_FALSE(answers_equivalent("\\frac{1}{3}", "0.33"));
}

TEST_CASE("agreement with the peer verifier cases", "[rewards][peer]") {
  std::string path = RLVR_SHARED_DATA "/verifier_peer_cases.jsonl";
  std::ifstream probe(path);
  if (!probe) {
    WARN("shared data absent (" << path << "); skipping peer agreement");
    return;
  }
  auto cases = read_jsonl(path);
  REQUIRE(cases.size() == 679);
  int agree = 0;
  std::map<std::string, std::pair<int, int>> by_src;
  for (auto& c : cases) {
    VerifyOptions o = options_from_config(c.value("config", nlohmann::json::object()));
    auto r = verify(c["pred"].get<std::string>(), c["gold"].get<std::string>(), o);
    bool ok = (r.verdict == Verdict::correct) == c["expected"].get<bool>();
    agree += ok;
    std::string src = c["source"].get<std::string>();
    src = src.substr(0, src.find("::"));
    by_src[src].first += ok;
    by_src[src].second += 1;
  }
  for (auto& [s, v] : by_src) UNSCOPED_INFO(s << ": " << v.first << "/" << v.second);
  double rate = double(agree) / double(cases.size());
  INFO("agreement " << agree << "/" << cases.size());
  CHECK(rate >= 0.97);
}

TEST_CASE("run_cases writes one line per case in order", "[rewards][cli]") {
  std::istringstream in(
      "{\"gold\": \"2\", \"pred\": \"\\\\boxed{2}\"}\n"
      "not json\n"
      "{\"gold\": \"3\", \"pred\": \"4\", \"config\": {\"float_rounding\": 2}}\n");
  std::ostringstream out, err;
  // The bad line still gets its (ungradable) output line, and the command fails naming it.
  CHECK(run_cases(in, out, err, 2, {}) == 1);
  CHECK(err.str().find("error: case line 2: bad JSON") != std::string::npos);
  std::istringstream lines(out.str());
  std::string l;
  std::vector<nlohmann::json> rows;
  while (std::getline(lines, l)) rows.push_back(nlohmann::json::parse(l));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["index"] == 0);
  CHECK(rows[0]["verdict"] == "correct");
  CHECK(rows[0]["pred_extracted"] == "2");
  CHECK(rows[1]["verdict"] == "ungradable");
  CHECK(rows[2]["verdict"] == "wrong");
  CHECK(err.str().find("cases: 3") != std::string::npos);
}

// --------------------------------------------------------------------------------------------------
namespace {
rlvr::RewardSpec spec(std::string name, double w = 1.0, rlvr::StringMap args = {}) {
  rlvr::RewardSpec s;
  s.name = std::move(name);
  s.weight = w;
  s.args = std::move(args);
  return s;
}
CompletionInput input(std::string_view c, std::string_view ref, int64_t n = 10, int64_t max = 100) {
  CompletionInput in;
  in.completion = c;
  in.reference = ref;
  in.num_tokens = n;
  in.max_tokens = max;
  in.truncated = n >= max;
  return in;
}
}  // namespace

TEST_CASE("rubric: scoring runs on several threads and gives the one-thread scores", "[rewards][rubric]") {
  auto r = Rubric::from_specs({spec("math_accuracy"), spec("format", 0.5), spec("random_reward", 0.25)});
  std::vector<std::string> preds, golds;
  for (int i = 0; i < 400; ++i) {
    preds.push_back("so \\boxed{\\frac{" + std::to_string(i) + "}{" + std::to_string(i % 7 + 1) + "}}");
    golds.push_back(std::to_string(i / (i % 7 + 1)));
  }
  std::vector<CompletionInput> in;
  for (int i = 0; i < 400; ++i) in.push_back({preds[i], golds[i], false, 8, 16});
  auto one = r.score(in, 1);
  // The first completion scored waits (at most 20 s) until a second thread has scored one: with one thread the
  // wait runs out and the test fails.
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::thread::id> ids;
  auto many = r.score(in, 4, [&](size_t) {
    std::unique_lock<std::mutex> lk(mu);
    ids.insert(std::this_thread::get_id());
    cv.notify_all();
    cv.wait_for(lk, std::chrono::seconds(20), [&] { return ids.size() >= 2; });
  });
  CHECK(ids.size() >= 2);
  REQUIRE(many.size() == one.size());
  int correct = 0;
  for (size_t i = 0; i < one.size(); ++i) {
    CHECK(many[i].total == one[i].total);
    CHECK(many[i].per_function == one[i].per_function);
    CHECK(many[i].verdict == one[i].verdict);
    correct += one[i].verdict == Verdict::correct;
  }
  CHECK(correct > 0);
  CHECK(correct < 400);  // both verdicts occur: the comparison covers both
  auto all_cores = r.score(in, 0);  // 0 = one thread per core: the same scores
  for (size_t i = 0; i < one.size(); ++i) CHECK(all_cores[i].total == one[i].total);
}

TEST_CASE("rubric: a countdown record is graded by its expression, not by the target alone", "[rewards][rubric]") {
  auto r = Rubric::from_specs({spec("math_accuracy"), spec("format", 0.5, {{"style", "boxed"}})});
  const nlohmann::json extra = {{"task", "countdown"}, {"numbers", {3, 7, 8}}, {"target", 29}};
  auto score = [&](const std::string& completion, const nlohmann::json* e) {
    return r.score_one({completion, "29", false, 8, 64, e});
  };
  // The target alone: correct as a plain answer, worth nothing on a countdown record (format still counts).
  CHECK(score("so \\boxed{29}", nullptr).per_function[0] == 1.0);
  auto bare = score("so \\boxed{29}", &extra);
  CHECK(bare.per_function[0] == 0.0);
  CHECK(bare.per_function[1] == 1.0);
  CHECK(bare.verdict == Verdict::wrong);
  auto good = score("3*7=21, 21+8=29. \\boxed{3*7+8}", &extra);
  CHECK(good.per_function[0] == 1.0);
  CHECK(good.verdict == Verdict::correct);
  CHECK(score("\\boxed{3*7+8+0}", &extra).per_function[0] == 0.0);   // 0 is not a given number
  CHECK(score("\\boxed{7*3+8*1}", &extra).per_function[0] == 0.0);   // neither is 1
  CHECK(score("\\boxed{3*8+7}", &extra).per_function[0] == 0.0);     // 31
  CHECK(score("no answer here", &extra).verdict == Verdict::ungradable);
  // A record whose extra is not a countdown record is graded against its reference.
  const nlohmann::json other = {{"source", "gsm8k"}};
  CHECK(score("\\boxed{29}", &other).per_function[0] == 1.0);
}

TEST_CASE("rubric: names, unknown names, bad arguments", "[rewards][rubric]") {
  auto r = Rubric::from_specs({spec("math_accuracy"), spec("format", 0.5)});
  CHECK(r.names() == std::vector<std::string>{"math_accuracy", "format"});
  try {
    Rubric::from_specs({spec("math_acuracy")});
    FAIL("expected ConfigError");
  } catch (const rlvr::ConfigError& e) {
    std::string m = e.what();
    CHECK(m.find("math_acuracy") != std::string::npos);
    CHECK(m.find("math_accuracy") != std::string::npos);
    CHECK(m.find("repetition") != std::string::npos);
  }
  try {
    Rubric::from_specs({spec("math_accuracy", 1, {{"mode", "ternary"}})});
    FAIL("expected ConfigError");
  } catch (const rlvr::ConfigError& e) {
    CHECK(std::string(e.what()).find("args.mode") != std::string::npos);
  }
  try {
    Rubric::from_specs({spec("repetition", 1, {{"ngram", "3"}})});
    FAIL("expected ConfigError");
  } catch (const rlvr::ConfigError& e) {
    CHECK(std::string(e.what()).find("ngram") != std::string::npos);
    CHECK(std::string(e.what()).find("ngram_size") != std::string::npos);
  }
  CHECK_THROWS_AS(Rubric::from_specs({spec("soft_overlong", 1, {{"cache", "abc"}})}), rlvr::ConfigError);
  CHECK(known_rewards().size() >= 6);
}

TEST_CASE("reward functions: hand-derived values", "[rewards][rubric]") {
  SECTION("math_accuracy binary / signed / ungradable") {
    auto bin = Rubric::from_specs({spec("math_accuracy")});
    auto sig = Rubric::from_specs({spec("math_accuracy", 1, {{"mode", "signed"}, {"ungradable", "-0.5"}})});
    CHECK(bin.score_one(input("\\boxed{16}", "16")).total == 1.0);
    CHECK(bin.score_one(input("\\boxed{15}", "16")).total == 0.0);
    CHECK(sig.score_one(input("\\boxed{15}", "16")).total == -1.0);
    auto u = sig.score_one(input("no idea", "16"));
    CHECK(u.total == -0.5);
    CHECK(u.verdict == Verdict::ungradable);
    CHECK(bin.score_one(input("\\boxed{16}", "16")).verdict == Verdict::correct);
  }
  SECTION("format r1 and boxed") {
    auto f = Rubric::from_specs({spec("format")});
    CHECK(f.score_one(input("<think>a</think>\n<answer>5</answer>", "")).total == 1.0);
    CHECK(f.score_one(input("<think>a</think> text <answer>5</answer>", "")).total == 0.0);
    CHECK(f.score_one(input("<answer>5</answer>", "")).total == 0.0);
    CHECK(f.score_one(input("<think>a</think><answer>5</answer> trailing", "")).total == 0.0);
    auto b = Rubric::from_specs({spec("format", 1, {{"style", "boxed"}})});
    CHECK(b.score_one(input("so \\boxed{5}", "")).total == 1.0);
    CHECK(b.score_one(input("so 5", "")).total == 0.0);
  }
  SECTION("tag_count") {
    auto t = Rubric::from_specs({spec("tag_count")});
    CHECK(t.score_one(input("<think>a</think><answer>5</answer>", "")).total == 1.0);
    CHECK(t.score_one(input("<think>a</think>", "")).total == 0.5);
    CHECK(t.score_one(input("<think><think>a</think>", "")).total == 0.25);
  }
  SECTION("soft_overlong (DAPO): max 100, cache 20") {
    auto s = Rubric::from_specs({spec("soft_overlong", 1, {{"cache", "20"}})});
    CHECK(s.score_one(input("", "", 80, 100)).total == 0.0);
    CHECK(s.score_one(input("", "", 90, 100)).total == Approx(-0.5));
    CHECK(s.score_one(input("", "", 100, 100)).total == Approx(-1.0));
    CHECK(s.score_one(input("", "", 120, 100)).total == -1.0);
  }
  SECTION("cosine: correct short = 1, correct at max = 0.5, wrong short = -1, wrong at max = -0.5") {
    auto c = Rubric::from_specs({spec("cosine")});
    CHECK(c.score_one(input("\\boxed{1}", "1", 0, 100)).total == Approx(1.0));
    CHECK(c.score_one(input("\\boxed{1}", "1", 100, 100)).total == Approx(0.5));
    CHECK(c.score_one(input("\\boxed{1}", "1", 50, 100)).total == Approx(0.75));
    CHECK(c.score_one(input("\\boxed{2}", "1", 0, 100)).total == Approx(-1.0));
    CHECK(c.score_one(input("\\boxed{2}", "1", 100, 100)).total == Approx(-0.5));
  }
  SECTION("repetition: 'a b c a b c' has 4 trigrams, 3 unique -> -0.25") {
    auto r = Rubric::from_specs({spec("repetition")});
    CHECK(r.score_one(input("a b c a b c", "")).total == Approx(-0.25));
    CHECK(r.score_one(input("a b", "")).total == 0.0);
    CHECK(r.score_one(input("one two three four", "")).total == 0.0);
  }
  SECTION("weighted total and breakdown") {
    auto r = Rubric::from_specs({spec("math_accuracy", 2.0), spec("tag_count", 0.5), spec("format", 0.0)});
    auto s = r.score_one(input("<think>x</think><answer>\\boxed{3}</answer>", "3"));
    REQUIRE(s.per_function.size() == 3);
    CHECK(s.per_function[0] == 1.0);
    CHECK(s.per_function[1] == 1.0);
    CHECK(s.per_function[2] == 1.0);
    CHECK(s.total == Approx(2.5));
    CHECK(s.verdict == Verdict::correct);
  }
  SECTION("no accuracy function: verdict ungradable") {
    auto r = Rubric::from_specs({spec("tag_count")});
    CHECK(r.score_one(input("x", "1")).verdict == Verdict::ungradable);
  }
}

TEST_CASE("rubric scoring on a thread pool matches serial scoring", "[rewards][rubric]") {
  auto r = Rubric::from_specs({spec("math_accuracy"), spec("repetition"), spec("cosine")});
  std::vector<std::string> texts, refs;
  for (int i = 0; i < 300; ++i) {
    texts.push_back("step " + std::to_string(i) + " so the total is \\boxed{" + std::to_string(i % 7) + "}");
    refs.push_back(std::to_string(i % 5));
  }
  std::vector<CompletionInput> in;
  for (int i = 0; i < 300; ++i) in.push_back(input(texts[i], refs[i], i % 100, 100));
  auto a = r.score(in, 1), b = r.score(in, 8);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].total == b[i].total);
    CHECK(a[i].verdict == b[i].verdict);
  }
}
