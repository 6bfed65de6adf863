// `rlvr verify` front end (see cases.h).
#include "rewards/cases.h"

#include "rewards/rubric.h"

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "common/json_exact.h"
#include "common/log.h"

#include <atomic>
#include <chrono>
#include <istream>
#include <ostream>
#include <thread>
#include <vector>

namespace rlvr::rewards {

namespace {

bool has(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

}  // namespace

namespace {
// A field of a case's `config` that the verifier reads must have its type: a wrong one would silently fall
// back to the default and verify the case under other rules than the caller asked for.
void expect(const nlohmann::json& c, const char* key, bool ok, const char* what) {
  if (!ok)
    throw Error(fmt::format("config.{} must be {}, got {}", key, what,
                            log::clip(c[key].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 80)));
}
}  // namespace

VerifyOptions options_from_config(const nlohmann::json& c, const VerifyOptions& base) {
  VerifyOptions o = base;
  if (c.is_null()) return o;
  if (!c.is_object())
    throw Error(fmt::format("config must be an object (or null), got {}", c.type_name()));
  if (c.contains("api")) expect(c, "api", c["api"].is_string(), "a string");
  std::string api = c.value("api", "");
  if (c.contains("float_rounding")) {
    const auto& f = c["float_rounding"];
    expect(c, "float_rounding", f.is_number_integer() && f.get<int64_t>() >= 0 && f.get<int64_t>() <= 17,
           "an integer in [0, 17]");
    o.float_rounding = f;
  }
  if (c.contains("strict")) {
    expect(c, "strict", c["strict"].is_boolean(), "true or false");
    o.strict = c["strict"];
  }
  if (c.contains("allow_set_relation_comp")) {
    expect(c, "allow_set_relation_comp", c["allow_set_relation_comp"].is_boolean(), "true or false");
    o.allow_set_relation = c["allow_set_relation_comp"];
  }
  if (c.contains("pre_extraction")) expect(c, "pre_extraction", c["pre_extraction"].is_string(), "a string");
  if (c.contains("extraction_config")) {
    const auto& ec = c["extraction_config"];
    expect(c, "extraction_config",
           ec.is_array() && std::all_of(ec.begin(), ec.end(), [](const nlohmann::json& e) { return e.is_string(); }),
           "a list of strings");
    bool latex = false, expr = false, letters = false, strings = false;
    for (auto& e : ec) {
      std::string s = e;
      if (has(s, "LatexExtractionConfig")) {
        latex = true;
        if (has(s, "boxed_match_priority=-1")) o.boxed = false;
        // Math-Verify: boxed priority 0 beats "final answer is" (50); 55 / 100 lose to it.
        if (has(s, "boxed_match_priority=55") || has(s, "boxed_match_priority=100") ||
            has(s, "lighteval default boxed_match_priority=55"))
          o.boxed_first = false;
        if (has(s, "malformed_operators=False")) o.malformed_operators = false;
      }
      if (has(s, "ExprExtractionConfig")) expr = true;
      if (has(s, "IndicesExtractionConfig")) letters = true;
      if (has(s, "StringExtractionConfig")) strings = true;
    }
    o.latex = latex;
    o.expr = expr;
    if (letters || strings) o.letters = 1;
    if (!latex && !expr && (letters || strings)) { o.latex = true; o.expr = true; }
  }
  if (c.contains("pre_extraction") && c["pre_extraction"].is_string() && has(c["pre_extraction"], "bracket"))
    o.last_bracket = true;
  if (has(api, "hendrycks")) o.ordered_lists = true;
  if (has(api, "qwen")) o.rel_tol = 1e-4, o.float_rounding = 3;
  return o;
}

int list_rewards(std::ostream& out) {
  for (auto& r : known_rewards()) {
    out << r.name << ": " << r.description << "\n";
    if (!r.args.empty()) out << "    args: " << r.args << "\n";
  }
  return 0;
}

int run_pair(const std::string& gold, const std::string& pred, std::ostream& out, const VerifyOptions& opt) {
  VerifyResult r = verify(pred, gold, opt);
  out << "verdict: " << verdict_name(r.verdict) << "\n";
  out << "pred_extracted: " << r.pred_extracted << "\n";
  out << "gold_extracted: " << r.gold_extracted << "\n";
  out << "reason: " << r.reason << "\n";
  return 0;
}

int run_cases(std::istream& in, std::ostream& out, std::ostream& err, int threads, const VerifyOptions& base) {
  struct Case {
    std::string gold, pred, error;
    VerifyOptions opt;
  };
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Case c;
    c.opt = base;
    try {
      // Integers beyond 64 bits keep their digits (a double would make neighbours equal).
      auto j = parse_json_exact(line);
      // A gold or pred must be text or a number: null (or a list, an object) has no answer to compare, and
      // reading it as the text "null" would make null and "null" agree.
      auto answer = [&](const char* key) -> std::optional<std::string> {
        const auto& v = j[key];
        if (v.is_string()) return v.get<std::string>();
        if (v.is_number()) return v.dump();
        c.error = fmt::format("{} must be a string or a number, got {}", key, v.type_name());
        return std::nullopt;
      };
      if (!j.is_object()) c.error = fmt::format("expected a JSON object, got {}", j.type_name());
      else if (!j.contains("gold") || !j.contains("pred")) c.error = "missing gold or pred";
      else if (auto g = answer("gold")) {
        if (auto p = answer("pred")) {
          c.gold = *g;
          c.pred = *p;
          if (j.contains("config")) c.opt = options_from_config(j["config"], base);
        }
      }
    } catch (const nlohmann::json::exception& e) {
      c.error = log::clip(std::string("bad JSON: ") + e.what(), 300);
    } catch (const std::exception& e) {
      c.error = log::clip(e.what(), 300);
    }
    cases.push_back(std::move(c));
  }
  std::vector<VerifyResult> res(cases.size());
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < cases.size();) {
      if (!cases[i].error.empty()) { res[i].reason = cases[i].error; continue; }
      res[i] = verify(cases[i].pred, cases[i].gold, cases[i].opt);
    }
  };
  int nt = std::max(1, threads);
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  size_t counts[3] = {0, 0, 0};
  for (size_t i = 0; i < cases.size(); ++i) {
    nlohmann::json o;
    o["index"] = i;
    o["verdict"] = verdict_name(res[i].verdict);
    o["pred_extracted"] = res[i].pred_extracted;
    o["gold_extracted"] = res[i].gold_extracted;
    if (!cases[i].error.empty()) o["error"] = cases[i].error;
    out << o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    counts[int(res[i].verdict)]++;
  }
  err << "cases: " << cases.size() << "  correct: " << counts[0] << "  wrong: " << counts[1]
      << "  ungradable: " << counts[2] << "  time: " << secs << " s\n";
  // Every line still gets its output line (indices stay aligned), but bad input lines fail the command.
  size_t bad = 0;
  for (size_t i = 0; i < cases.size(); ++i)
    if (!cases[i].error.empty() && bad++ == 0)
      err << "error: case line " << i + 1 << ": " << cases[i].error << "\n";
  if (bad > 0) {
    err << "error: " << bad << " input line(s) could not be read (reported as ungradable with an \"error\" field)\n";
    return 1;
  }
  return 0;
}

}  // namespace rlvr::rewards
